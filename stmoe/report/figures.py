"""The report's figures: an SVG inlined in the page plus SVG and PNG files, rendered locally by
vl-convert; where its JavaScript engine cannot start, the chart's Vega-Lite spec and a note.

vl-convert runs V8, which reserves several GiB of address space when it starts and, refused them
under a virtual-memory limit (`ulimit -v`), aborts the whole process (SIGTRAP): no Python
exception, and the report would be lost with the study done. So where such a limit is set, a
child process tries vl-convert first.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from stmoe.charts.base import render_svg
from stmoe.files import atomic_write
from stmoe.report import html

_TRY = ("import vl_convert as v; v.vegalite_to_svg({'mark': 'point', 'data': {'values': [{'x': 1}]}, "
        "'encoding': {'x': {'field': 'x', 'type': 'quantitative'}}})")


def renderer_problem() -> str | None:
    """Why vl-convert cannot render in this process, or None (always None without a memory limit)."""
    try:
        import resource
    except ImportError:   # not a Unix: no rlimits
        return None
    limits = [(flag, resource.getrlimit(which)[0]) for flag, which in
              (("ulimit -v", resource.RLIMIT_AS), ("ulimit -d", resource.RLIMIT_DATA))]
    limits = [(flag, value) for flag, value in limits if value != resource.RLIM_INFINITY]
    if not limits:
        return None
    try:
        done = subprocess.run([sys.executable, "-c", _TRY], capture_output=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"vl-convert could not be tried ({exc})"
    if done.returncode == 0:
        return None
    how = f"signal {-done.returncode}" if done.returncode < 0 else f"exit status {done.returncode}"
    limit = ", ".join(f"{flag} {value // 1024} KiB" for flag, value in limits)
    return f"vl-convert's JavaScript engine did not start under this process's memory limit ({limit}; {how})"


def save_figure(chart, out: Path, stem: str, problem: str | None) -> str:
    """The figure's HTML: the inline SVG (also written as figures/STEM.svg and .png), or, when
    `problem` says vl-convert cannot run, a note and the spec in figures/STEM.vl.json."""
    if problem is not None:
        spec = json.dumps(chart.to_dict(), indent=1).encode()
        atomic_write(out / "figures" / f"{stem}.vl.json", lambda fh: fh.write(spec))
        return (f"<p class='failed'>chart not rendered: {html.esc(problem)}; its Vega-Lite spec is "
                f"figures/{html.esc(stem)}.vl.json</p>")
    import vl_convert as vlc

    svg = render_svg(chart)
    atomic_write(out / "figures" / f"{stem}.svg", lambda fh: fh.write(svg.encode()))
    png = vlc.vegalite_to_png(chart.to_dict(), scale=2)
    atomic_write(out / "figures" / f"{stem}.png", lambda fh: fh.write(png))
    return svg
