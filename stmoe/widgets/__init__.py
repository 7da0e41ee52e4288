"""Live explorers: ipywidgets controls wired to one persistent `alt.JupyterChart` each."""

from stmoe.widgets.explorer import Explorer

__all__ = ["Explorer"]
