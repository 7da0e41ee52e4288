"""A small synthetic trace shaped like the bundled ones (8 layers, top-4 of 32), split for the
buffer and tuning chapters' tests; built once per session."""

from functools import cache

import stmoe
from stmoe.sim.hardware import model_dims
from stmoe.book.held_out import held_out


@cache
def small_trace():
    return stmoe.synthetic_trace(8 * 96, 8, 32, 4, num_sequences=8, prompt_tokens=16, seed=3)


@cache
def small_held_out():
    tr = small_trace()
    dims = model_dims(tr, hidden=192, ffn=128, heads=6, kv_heads=2, head_dim=32, dtype="float32")
    return held_out(tr, lookaheads=(1, 2, 3), dims=dims)
