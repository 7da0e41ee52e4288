"""A self-contained HTML report: inline SVG charts (rendered locally by vl-convert), tables and
provenance. No script tags and no external resources, so it opens offline anywhere."""

from __future__ import annotations

import html
from datetime import datetime, timezone

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
.figure { margin: 1em 0; } .caveat { color: #8a4b00; } .failed { color: #a00; }
.note { color: #555; font-size: .9em; }
"""


def esc(value) -> str:
    return html.escape(str(value))


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) >= 1e4 or (value and abs(value) < 1e-3) else f"{value:.3f}"
    if value is None:
        return "–"
    return str(value)


def table(rows: list[dict], columns: list[str] | None = None) -> str:
    if not rows:
        return "<p class='note'>(no rows)</p>"
    columns = columns or list(rows[0])
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(fmt(r.get(c)))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure(svg: str, caption: str) -> str:
    return f"<div class='figure'>{svg}<div class='note'>{esc(caption)}</div></div>"


def page(title: str, intro_html: str, sections: list[str], version: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{esc(title)}</h1>{intro_html}"
            + "".join(sections)
            + f"<p class='note'>Written by stmoe {esc(version)} on {stamp}.</p></body></html>")
