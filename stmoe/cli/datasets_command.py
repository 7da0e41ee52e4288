"""`stmoe datasets [--json]`: every trace loadable by name (bundled and public)."""

from __future__ import annotations

from stmoe.cli.output import format_table, print_json
from stmoe.readers.catalog import catalog


def register(sub) -> None:
    p = sub.add_parser("datasets", help="list the traces loadable by name (bundled and public)")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    entries = catalog()
    if args.json:
        print_json(entries)
    else:
        print(format_table(entries, ["name", "kind", "domain", "offline", "description"]))
    return 0
