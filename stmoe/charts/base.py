"""Shared chart plumbing: inline data without pandas, and offline SVG rendering."""

from __future__ import annotations

from typing import Iterable, Mapping

MAX_ROWS = 5000  # Altair refuses more embedded rows; aggregate before charting


def rows_data(rows: Iterable[Mapping]):
    """Inline chart data from a list of dicts, with numpy scalars made plain."""
    import altair as alt

    clean = [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in rows]
    if len(clean) > MAX_ROWS:
        raise ValueError(f"chart data has {len(clean)} rows; aggregate to at most {MAX_ROWS} first")
    return alt.Data(values=clean)


def render_svg(chart) -> str:
    """The chart as an SVG string, rendered locally by vl-convert (no network)."""
    import vl_convert as vlc

    return vlc.vegalite_to_svg(chart.to_dict())
