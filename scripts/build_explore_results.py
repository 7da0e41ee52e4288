"""Build chapter 05's shipped design-space results: every point of data/explore/chapter05.toml,
simulated afresh into data/explore/chapter05/ (old parts removed first, so the folder holds
exactly this spec's points at this package version).

    PYTHONPATH=. python scripts/build_explore_results.py [--workers N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from stmoe.sim.explore import default_out, explore, read_results
from stmoe.sim.explore_spec import read_spec

SPEC = Path(__file__).resolve().parent.parent / "data" / "explore" / "chapter05.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, help="local worker processes (default: one per core)")
    args = parser.parse_args()
    out = default_out(SPEC)
    for part in out.glob("part-*.parquet"):
        part.unlink()
    spec = read_spec(SPEC)
    start = time.monotonic()
    run = explore(spec, out, workers=args.workers)
    rows = read_results(out)
    size = sum(p.stat().st_size for p in out.glob("part-*.parquet"))
    print(f"{len(rows)} points in {time.monotonic() - start:.1f} s (simulation {run.seconds:.1f} s on "
          f"{run.workers} workers); {size / 1024:.0f} KiB in {out}")


if __name__ == "__main__":
    main()
