"""What a text trace may claim, bounded by stated caps and by the data the file actually holds,
so that a 150-byte header cannot make a reader allocate gigabytes."""

from __future__ import annotations

import numpy as np

from stmoe.errors import TraceError

# Far above any released MoE (Qwen3-235B-A22B: 94 MoE layers, DeepSeek-V3: top-8 of 256).
MAX_LAYERS = 4096
MAX_TOP_K = 1024
# A reader allocates a (tokens, layers, k) grid of cells; a file must fill at least this share of
# them with expert ids it actually holds (the rest are "not routed", said in the caveats).
MIN_FILLED_SHARE = 1 / 64


def check_cells(path, tokens: int, layers: int, k: int, ids_present: int) -> None:
    cells = tokens * layers * k
    if cells > ids_present / MIN_FILLED_SHARE:
        raise TraceError(f"{path}: the header claims {layers} layers x top-{k} for {tokens} tokens "
                         f"({cells} cells) but the file holds only {ids_present} expert ids; refusing "
                         f"a grid less than 1/{round(1 / MIN_FILLED_SHARE)} filled")


def unrouted_caveats(ids: np.ndarray, phase: np.ndarray) -> list[str]:
    """One caveat per (phase, layer) that some tokens of that phase do not route."""
    caveats = []
    for phase_value, phase_name in ((0, "prefill"), (1, "decode")):
        sel = phase == phase_value
        if not sel.any():
            continue
        routed = (ids[sel, :, 0] >= 0).sum(axis=0)
        for layer in np.flatnonzero(routed < sel.sum()):
            caveats.append(f"{phase_name}: layer {int(layer)} routes only {int(routed[layer])} of "
                           f"{int(sel.sum())} tokens (the others are marked -1, not routed)")
    return caveats
