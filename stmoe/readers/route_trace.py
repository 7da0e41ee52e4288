"""Reader for the "route_trace v1" CSV format (BigMoeOnEdge's llama.cpp-based engine).

Layout: ``#`` comment lines (``# route_trace v1``, ``# model=... n_layer=L n_expert=E
n_expert_used=k``, one ``# layer=i expert_bytes=n dense_bytes=n`` per layer), then a CSV header
and one row per (step, layer, slot). ``turn`` is a conversation turn (one sequence each),
``phase`` 0 = prefill, 1 = decode, ``step`` the token position: tokens are ordered by step
within each turn whatever the rows' order (said in the caveats when it differs), and a token
whose rows disagree on its phase is an error.

Integers are ASCII digits (no "1.0", "1_000" or "+1"); a header key or layer line given twice,
a cell given twice or a layer with only some of its k slots is an error; a layer some tokens do
not route is kept as -1 and said in the caveats. Sizes are capped (`readers/limits.py`).
"""

from __future__ import annotations

import array
import csv
import operator
import re
from pathlib import Path

import numpy as np

from stmoe.errors import TraceError
from stmoe.readers.limits import MAX_LAYERS, MAX_TOP_K, check_cells, unrouted_caveats
from stmoe.readers.text import read_text_lines
from stmoe.trace import MAX_EXPERTS, Trace

MAGIC = "# route_trace v1"
REQUIRED_COLUMNS = ("turn", "phase", "step", "layer", "slot", "expert", "weight")

# The stock router top-k of models whose engines may override it (from the public model cards).
# Keyed by (arch, n_layer, n_expert); used only to record a caveat, never to change data.
STOCK_TOP_K = {
    ("qwen3moe", 48, 128): ("Qwen3-30B-A3B", 8),  # huggingface.co/Qwen/Qwen3-30B-A3B config.json
    ("qwen3moe", 94, 128): ("Qwen3-235B-A22B", 8),  # huggingface.co/Qwen/Qwen3-235B-A22B
}


_INT = re.compile(r"-?[0-9]+")
# the six integer fields of a row, joined by commas; at most 18 characters each (they fit int64)
_INTS = re.compile(r"(?:[0-9]{1,18}|-[0-9]{1,17})(?:,(?:[0-9]{1,18}|-[0-9]{1,17})){5}")


def looks_like(first_line: str) -> bool:
    return first_line.strip() == MAGIC


def _parse_header(path: Path, comments: list[str]) -> tuple[dict, dict[int, int], dict[int, int]]:
    fields: dict[str, str] = {}
    expert_bytes: dict[int, int] = {}
    dense_bytes: dict[int, int] = {}
    for line in comments:
        body = line.lstrip("#").strip()
        pairs = re.findall(r"(\w+)=(\S+)", body)
        named = dict(pairs)
        if "layer" in named and "expert_bytes" in named:
            if not (_INT.fullmatch(named["layer"]) and _INT.fullmatch(named["expert_bytes"])):
                raise TraceError(f"{path}: header: bad layer line {line.strip()!r}")
            layer = int(named["layer"])
            if layer in expert_bytes:
                raise TraceError(f"{path}: header: layer {layer} is described twice")
            expert_bytes[layer] = int(named["expert_bytes"])
            if "dense_bytes" in named:
                if not _INT.fullmatch(named["dense_bytes"]):
                    raise TraceError(f"{path}: header: bad layer line {line.strip()!r}")
                dense_bytes[layer] = int(named["dense_bytes"])
            continue
        for key, value in pairs:
            if key in fields:
                raise TraceError(f"{path}: header: {key}= is given twice ({fields[key]!r}, then {value!r})")
            fields[key] = value
    caps = {"n_layer": MAX_LAYERS, "n_expert": MAX_EXPERTS, "n_expert_used": MAX_TOP_K}
    for key, cap in caps.items():
        if key not in fields:
            raise TraceError(f"{path}: header: missing {key}= in the '# model=...' line")
        if not _INT.fullmatch(fields[key]) or not 1 <= int(fields[key]) <= cap:
            raise TraceError(f"{path}: header: {key}={fields[key]!r} is not an integer in 1..{cap}")
    return fields, expert_bytes, dense_bytes


def _parse_rows(path: Path, body: list[str], first_data_line: int):
    """The routing rows as integer columns and weights, every value checked as it is read."""
    reader = csv.reader(body)
    try:
        return _parse_row_values(path, reader, first_data_line)
    except csv.Error as exc:   # a field over csv's size limit, an unterminated quote at the end...
        raise TraceError(f"{path}: line {first_data_line + reader.line_num - 1}: not CSV ({exc})") from None


def _parse_row_values(path: Path, reader, first_data_line: int):
    header = next(reader)
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise TraceError(f"{path}: CSV header is missing column(s) {', '.join(missing)}")
    col = [header.index(c) for c in REQUIRED_COLUMNS]
    int_fields = operator.itemgetter(*col[:-1])
    # machine integers and floats, not Python objects: 8 bytes a value instead of about 36
    ints, weight = array.array("q"), array.array("d")
    for i, row in enumerate(reader):
        if len(row) != len(header):
            raise TraceError(f"{path}: line {first_data_line + 1 + i}: {len(row)} fields, expected "
                             f"{len(header)} (truncated file?)")
        values = int_fields(row)
        if not _INTS.fullmatch(",".join(values)):   # one match a row; the slow path names the field
            _bad_integer(path, first_data_line + 1 + i, row, header, col)
        ints.extend(map(int, values))
        try:
            weight.append(float(row[col[-1]]))
        except ValueError:
            raise TraceError(f"{path}: line {first_data_line + 1 + i}: weight {row[col[-1]][:30]!r} "
                             "is not a number") from None
    if not weight:
        raise TraceError(f"{path}: no routing rows")
    table = np.frombuffer(ints, dtype=np.int64).reshape(-1, len(col) - 1)
    return [table[:, j].copy() for j in range(len(col) - 1)], np.frombuffer(weight, dtype=np.float64)


def _bad_integer(path: Path, lineno: int, row: list[str], header: list[str], col: list[int]):
    for c, name in zip(col, REQUIRED_COLUMNS):
        value = row[c]
        if not _INT.fullmatch(value) or len(value) > 18:  # 18 digits fit int64
            what = "a second CSV header row" if row == header else f"{name} {value[:30]!r} is not an integer"
            raise TraceError(f"{path}: line {lineno}: {what}")
    raise TraceError(f"{path}: line {lineno}: a field holds a comma")   # a quoted "1,2"


def read_route_trace(path: str | Path) -> Trace:
    path = Path(path)
    lines = read_text_lines(path)
    if not looks_like(lines[0]):
        raise TraceError(f"{path}: first line is not {MAGIC!r}")
    comments = [ln for ln in lines if ln.startswith("#")]
    body = [ln for ln in lines if not ln.startswith("#") and ln.strip()]
    fields, expert_bytes, dense_bytes = _parse_header(path, comments)
    L, E, k = int(fields["n_layer"]), int(fields["n_expert"]), int(fields["n_expert_used"])
    if k > E:
        raise TraceError(f"{path}: header: n_expert_used={k} exceeds n_expert={E}")
    if not body:
        raise TraceError(f"{path}: no CSV header or rows after the comment lines")
    first_data_line = len(lines) - len(body) + 1  # 1-based line number of the CSV header
    (turn, phase, step, layer, slot, expert), weight = _parse_rows(path, body, first_data_line)

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
    check("turn", turn, 0, 2 ** 31)   # stored as the int32 sequence id
    check("step", step, 0, 2 ** 62)
    if not np.all(np.isfinite(weight)):
        j = int(np.argmax(~np.isfinite(weight)))
        raise TraceError(f"{path}: line {first_data_line + 1 + j}: weight {weight[j]} is not finite")

    # Tokens are (turn, step) pairs: turns in order of first appearance, each turn's tokens in
    # step order (the step is the token's position, whatever order the rows were written in).
    turns, turn_first, turn_of = np.unique(turn, return_index=True, return_inverse=True)
    turn_rank = np.empty(len(turns), dtype=np.int64)
    turn_rank[np.argsort(turn_first, kind="stable")] = np.arange(len(turns))
    pairs, first, inverse = np.unique(np.stack([turn_rank[turn_of.reshape(-1)], step], axis=1), axis=0,
                                      return_index=True, return_inverse=True)
    t = inverse.reshape(-1)   # np.unique sorts the pairs: by turn rank, then step
    steps = pairs[:, 1]
    T = len(pairs)
    out_of_order = bool(np.any(np.diff(first) < 0))
    tok_phase = phase[first]
    conflict = tok_phase[t] != phase
    if conflict.any():
        j = int(np.argmax(conflict))
        raise TraceError(f"{path}: line {first_data_line + 1 + j}: phase {int(phase[j])} for turn "
                         f"{int(turn[j])}, step {int(step[j])}, which line "
                         f"{first_data_line + 1 + int(first[t[j]])} gives phase {int(tok_phase[t[j]])}")
    check_cells(path, T, L, k, len(weight))

    ids = np.full((T, L, k), -1, dtype=np.int16)
    w = np.zeros((T, L, k), dtype=np.float32)
    cell = (t * L + layer) * k + slot
    # sorting the rows' cells finds one given twice without a count per cell of the whole grid
    # (8 bytes a cell: 1.7 GB for a 128 MiB file that fills 1/48 of its grid)
    by_cell = np.argsort(cell, kind="stable")
    twice = np.flatnonzero(cell[by_cell][1:] == cell[by_cell][:-1])
    if twice.size:
        j = int(by_cell[twice + 1].min())
        raise TraceError(f"{path}: line {first_data_line + 1 + j}: step {int(step[j])}, layer "
                         f"{int(layer[j])}, slot {int(slot[j])} appears more than once")
    ids.reshape(-1)[cell] = expert
    w.reshape(-1)[cell] = weight
    tok_turn = turn[first]

    partial = (ids >= 0).sum(axis=2)
    holes = (partial > 0) & (partial < k)
    if holes.any():
        tt, ll = (int(x) for x in np.argwhere(holes)[0])
        raise TraceError(f"{path}: step {int(steps[tt])}, layer {ll}: "
                         f"only {int(partial[tt, ll])} of {k} slots present")

    arch = fields.get("arch", "unknown")
    caveats = []
    stock = STOCK_TOP_K.get((arch, L, E))
    if stock and stock[1] != k:
        caveats.append(f"k overridden: the engine routed top-{k}, not {stock[0]}'s stock top-{stock[1]}; "
                       f"weights are renormalised over the {k} chosen experts")
    if out_of_order:
        caveats.append("rows were not in step order: tokens are ordered by step within each turn")
    caveats += unrouted_caveats(ids, tok_phase)
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
    if dense_bytes:
        meta["dense_bytes"] = [dense_bytes.get(i) for i in range(L)]
    return Trace(ids, num_experts=E, phase=tok_phase, sequence=tok_turn, weights=w, meta=meta,
                 origin=str(path))


def _model_name(model_field: str, stock) -> str:
    if stock:
        return stock[0]
    return Path(model_field).name or model_field
