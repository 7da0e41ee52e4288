"""Reader for the "route_trace v1" CSV format (BigMoeOnEdge's llama.cpp-based engine).

Layout: ``#`` comment lines (``# route_trace v1``, ``# model=... n_layer=L n_expert=E
n_expert_used=k``, one ``# layer=i expert_bytes=n dense_bytes=n`` per layer), then a CSV header
and one row per (step, layer, slot). ``turn`` is a conversation turn (one sequence each),
``phase`` 0 = prefill, 1 = decode, ``step`` the token position.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from stmoe.errors import TraceError
from stmoe.readers.text import read_text_lines
from stmoe.trace import Trace

MAGIC = "# route_trace v1"
REQUIRED_COLUMNS = ("turn", "phase", "step", "layer", "slot", "expert", "weight")

# The stock router top-k of models whose engines may override it (from the public model cards).
# Keyed by (arch, n_layer, n_expert); used only to record a caveat, never to change data.
STOCK_TOP_K = {
    ("qwen3moe", 48, 128): ("Qwen3-30B-A3B", 8),  # huggingface.co/Qwen/Qwen3-30B-A3B config.json
    ("qwen3moe", 94, 128): ("Qwen3-235B-A22B", 8),  # huggingface.co/Qwen/Qwen3-235B-A22B
}


def looks_like(first_line: str) -> bool:
    return first_line.strip() == MAGIC


def _parse_header(path: Path, comments: list[str]) -> tuple[dict, dict[int, int]]:
    fields: dict[str, str] = {}
    expert_bytes: dict[int, int] = {}
    for line in comments:
        body = line.lstrip("#").strip()
        pairs = dict(re.findall(r"(\w+)=(\S+)", body))
        if "layer" in pairs and "expert_bytes" in pairs:
            try:
                expert_bytes[int(pairs["layer"])] = int(pairs["expert_bytes"])
            except ValueError:
                raise TraceError(f"{path}: header: bad layer line {line.strip()!r}") from None
        else:
            fields.update(pairs)
    for key in ("n_layer", "n_expert", "n_expert_used"):
        if key not in fields:
            raise TraceError(f"{path}: header: missing {key}= in the '# model=...' line")
        try:
            if int(fields[key]) < 1:
                raise ValueError
        except ValueError:
            raise TraceError(f"{path}: header: {key}={fields[key]!r} is not a positive integer") from None
    return fields, expert_bytes


def read_route_trace(path: str | Path) -> Trace:
    path = Path(path)
    lines = read_text_lines(path)
    if not looks_like(lines[0]):
        raise TraceError(f"{path}: first line is not {MAGIC!r}")
    comments = [ln for ln in lines if ln.startswith("#")]
    body = [ln for ln in lines if not ln.startswith("#") and ln.strip()]
    fields, expert_bytes = _parse_header(path, comments)
    L, E, k = int(fields["n_layer"]), int(fields["n_expert"]), int(fields["n_expert_used"])
    if not body:
        raise TraceError(f"{path}: no CSV header or rows after the comment lines")
    first_data_line = len(lines) - len(body) + 1  # 1-based line number of the CSV header
    reader = csv.reader(body)
    header = next(reader)
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise TraceError(f"{path}: CSV header is missing column(s) {', '.join(missing)}")
    col = {c: header.index(c) for c in REQUIRED_COLUMNS}
    rows = []
    for i, row in enumerate(reader):
        lineno = first_data_line + 1 + i
        if len(row) != len(header):
            raise TraceError(f"{path}: line {lineno}: {len(row)} fields, expected {len(header)} "
                             "(truncated file?)")
        try:
            rows.append(tuple(int(row[col[c]]) for c in REQUIRED_COLUMNS[:-1]) + (float(row[col["weight"]]),))
        except ValueError:
            raise TraceError(f"{path}: line {lineno}: non-numeric value in {row!r}") from None
    if not rows:
        raise TraceError(f"{path}: no routing rows")
    data = np.array(rows, dtype=np.float64)
    turn, phase, step, layer, slot, expert = (data[:, i].astype(np.int64) for i in range(6))
    weight = data[:, 6]

    def check(name, values, lo, hi):
        bad = (values < lo) | (values >= hi)
        if bad.any():
            j = int(np.argmax(bad))
            raise TraceError(f"{path}: line {first_data_line + 1 + j}: {name} {int(values[j])} "
                             f"is outside {lo}..{hi - 1}")

    check("layer", layer, 0, L)
    check("slot", slot, 0, k)
    check("expert", expert, 0, E)
    check("phase", phase, 0, 2)
    if not np.all(np.isfinite(weight)):
        j = int(np.argmax(~np.isfinite(weight)))
        raise TraceError(f"{path}: line {first_data_line + 1 + j}: weight {weight[j]} is not finite")

    # Tokens are (turn, step) pairs, in order of first appearance.
    token_key = turn * (int(step.max()) + 1) + step
    sorted_keys, first, inverse = np.unique(token_key, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    t = rank[inverse]
    keys = sorted_keys[order]
    T = len(keys)

    ids = np.full((T, L, k), -1, dtype=np.int64)
    w = np.zeros((T, L, k), dtype=np.float32)
    cell = (t * L + layer) * k + slot
    counts = np.bincount(cell, minlength=T * L * k)
    if counts.max() > 1:
        j = int(np.argmax(counts[cell] > 1))
        raise TraceError(f"{path}: line {first_data_line + 1 + j}: step {int(step[j])}, layer "
                         f"{int(layer[j])}, slot {int(slot[j])} appears more than once")
    ids.reshape(-1)[cell] = expert
    w.reshape(-1)[cell] = weight
    tok_phase = np.zeros(T, dtype=np.int64)
    tok_phase[t] = phase
    tok_turn = np.zeros(T, dtype=np.int64)
    tok_turn[t] = turn

    partial = (ids >= 0).sum(axis=2)
    holes = (partial > 0) & (partial < k)
    if holes.any():
        tt, ll = (int(x) for x in np.argwhere(holes)[0])
        raise TraceError(f"{path}: step {int(keys[tt] % (int(step.max()) + 1))}, layer {ll}: "
                         f"only {int(partial[tt, ll])} of {k} slots present")

    arch = fields.get("arch", "unknown")
    caveats = []
    stock = STOCK_TOP_K.get((arch, L, E))
    if stock and stock[1] != k:
        caveats.append(f"k overridden: the engine routed top-{k}, not {stock[0]}'s stock top-{stock[1]}; "
                       f"weights are renormalised over the {k} chosen experts")
    for phase_value, phase_name in ((0, "prefill"), (1, "decode")):
        sel = tok_phase == phase_value
        if not sel.any():
            continue
        routed = (ids[sel, :, 0] >= 0).sum(axis=0)
        for ll in np.flatnonzero(routed < sel.sum()):
            caveats.append(f"{phase_name}: layer {int(ll)} routes only {int(routed[ll])} of "
                           f"{int(sel.sum())} tokens (the others are marked -1, not routed)")
    model = fields.get("model", "unknown")
    meta = {
        "name": path.stem,
        "model": _model_name(model, stock),
        "model_path": model,
        "arch": arch,
        "top_k": k,
        "format": "route_trace v1",
        "source": str(path),
        "caveats": caveats,
    }
    if expert_bytes:
        meta["expert_bytes"] = [expert_bytes.get(i) for i in range(L)]
    return Trace(ids, num_experts=E, phase=tok_phase, sequence=tok_turn, weights=w, meta=meta,
                 origin=str(path))


def _model_name(model_field: str, stock) -> str:
    if stock:
        return stock[0]
    return Path(model_field).name or model_field
