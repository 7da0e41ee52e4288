"""Altair chart functions: each takes numbers the models computed and returns a chart whose
spec is tested (`chart.to_dict()`), never a notebook-only drawing."""

from stmoe.charts.base import render_svg, rows_data

__all__ = ["render_svg", "rows_data"]
