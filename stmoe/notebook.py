"""One call at the top of every notebook: offline chart rendering and fixed seeds."""

from __future__ import annotations

import random

import numpy as np

SEED = 0


def setup(seed: int = SEED) -> None:
    """Render static Altair charts as SVG through vl-convert (no CDN, deterministic output) and
    serve the live explorers' JavaScript from the local vl-convert bundle; seed numpy and random.

    Altair 6's default HTML renderer loads Vega from a CDN and shows an error offline, and
    JupyterLab 4 cannot render Altair 6's mime bundle: SVG and an offline JupyterChart are what
    work everywhere here.
    """
    import altair as alt

    alt.renderers.enable("svg")
    alt.data_transformers.disable_max_rows()  # charts aggregate first; see stmoe.charts
    alt.JupyterChart.enable_offline()
    random.seed(seed)
    np.random.seed(seed)
