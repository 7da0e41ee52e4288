"""`stmoe datasets [--json]`: the bundled traces."""

from __future__ import annotations

from stmoe.cli.output import format_table, print_json


def register(sub) -> None:
    p = sub.add_parser("datasets", help="list the bundled traces")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    from stmoe.datasets import bundled

    entries = list(bundled().values())
    if args.json:
        print_json(entries)
    elif not entries:
        print("no bundled traces yet (data/datasets.json is absent)")
    else:
        print(format_table(entries, ["name", "domain", "file", "description"]))
    return 0
