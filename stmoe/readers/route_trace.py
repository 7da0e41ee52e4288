"""Reader for the "route_trace v1" CSV format (BigMoeOnEdge's llama.cpp-based engine).

Layout: ``#`` comment lines (``# route_trace v1``, ``# model=... n_layer=L n_expert=E
n_expert_used=k``, one ``# layer=i expert_bytes=n dense_bytes=n`` per layer), then a CSV header
and one row per (step, layer, slot). ``turn`` is a conversation turn (one sequence each),
``phase`` 0 = prefill, 1 = decode, ``step`` the token position: tokens are ordered by step
within each turn whatever the rows' order (said in the caveats when it differs), and a token
whose rows disagree on its phase is an error.

Integers are ASCII digits (no "1.0", "1_000" or "+1") and weights ASCII decimal numbers (no
"0_5") within float32's range; a header key, a layer line or a column name given twice, a layer
line for a layer beyond n_layer or without expert_bytes=, a cell given twice or a layer with only
some of its k slots is an error; a header key the format does not define, layer lines for only
some layers and a layer some tokens do not route (kept as -1) are said in the caveats. Sizes
are capped (`readers/limits.py`).
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
from stmoe.trace import MAX_EXPERTS, Trace, beyond_float32

MAGIC = "# route_trace v1"
REQUIRED_COLUMNS = ("turn", "phase", "step", "layer", "slot", "expert", "weight")
# the keys of the model line and of a layer line: a header key is one of these or said in the caveats
MODEL_KEYS = ("model", "arch", "n_layer", "n_expert", "n_expert_used")
LAYER_KEYS = ("layer", "expert_bytes", "dense_bytes")

# The stock router top-k of models whose engines may override it (from the public model cards).
# Keyed by (arch, n_layer, n_expert); used only to record a caveat, never to change data.
STOCK_TOP_K = {
    ("qwen3moe", 48, 128): ("Qwen3-30B-A3B", 8),  # huggingface.co/Qwen/Qwen3-30B-A3B config.json
    ("qwen3moe", 94, 128): ("Qwen3-235B-A22B", 8),  # huggingface.co/Qwen/Qwen3-235B-A22B
}


_INT = re.compile(r"-?[0-9]+")
# A weight is an ASCII decimal number (nan and inf pass here and are refused as not finite):
# Python's float() also reads "0_5" as 5.0, " 0.5 ", and digits of other scripts.
_NUMBER = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?i:nan|inf|infinity)"
_WEIGHT = re.compile(_NUMBER)
# a row's six integer fields and its weight, joined by commas; each integer at most 18
# characters (they fit int64)
_ROW = re.compile(r"(?:[0-9]{1,18}|-[0-9]{1,17})(?:,(?:[0-9]{1,18}|-[0-9]{1,17})){5},(?:" + _NUMBER + ")")


def looks_like(first_line: str) -> bool:
    return first_line.strip() == MAGIC


def _parse_header(path: Path, comments: list[str]) -> tuple[dict, dict[int, int], dict[int, int], list[str]]:
    """The model line's fields, the layer lines' byte counts and the caveats of the header
    (keys the format does not define: kept out, said). A layer line lacking expert_bytes= or
    holding another line's key, and a key given twice, are errors; `_check_layer_lines` checks
    the layers against n_layer once it is known."""
    fields: dict[str, str] = {}
    expert_bytes: dict[int, int] = {}
    dense_bytes: dict[int, int] = {}
    unknown: dict[str, str] = {}
    for line in comments:
        pairs = re.findall(r"(\w+)=(\S+)", line.lstrip("#").strip())
        named = dict(pairs)
        if len(named) < len(pairs):
            key = next(k for i, (k, _) in enumerate(pairs) if k in dict(pairs[:i]))
            raise TraceError(f"{path}: header: {key}= is given twice in {line.strip()[:80]!r}")
        unknown |= {k: v for k, v in pairs if k not in MODEL_KEYS + LAYER_KEYS and k not in unknown}
        if "layer" in named or "expert_bytes" in named or "dense_bytes" in named:
            misplaced = [k for k in named if k in MODEL_KEYS]
            if "layer" not in named or "expert_bytes" not in named or misplaced:
                why = (f"{misplaced[0]}= belongs on the model line" if misplaced else
                       "no layer=" if "layer" not in named else "no expert_bytes=")
                raise TraceError(f"{path}: header: bad layer line {line.strip()[:80]!r} ({why}; a layer line "
                                 "is '# layer=i expert_bytes=n [dense_bytes=n]')")
            for key in ("layer", *(k for k in ("expert_bytes", "dense_bytes") if k in named)):
                if not _INT.fullmatch(named[key]) or len(named[key]) > 18:
                    raise TraceError(f"{path}: header: layer line {line.strip()[:80]!r}: {key}="
                                     f"{named[key][:30]!r} is not an integer")
            layer = int(named["layer"])
            if layer in expert_bytes:
                raise TraceError(f"{path}: header: layer {layer} is described twice")
            expert_bytes[layer] = int(named["expert_bytes"])
            if "dense_bytes" in named:
                dense_bytes[layer] = int(named["dense_bytes"])
            continue
        for key, value in pairs:
            if key in fields:
                raise TraceError(f"{path}: header: {key}= is given twice ({fields[key]!r}, then {value!r})")
            if key in MODEL_KEYS:
                fields[key] = value
    caps = {"n_layer": MAX_LAYERS, "n_expert": MAX_EXPERTS, "n_expert_used": MAX_TOP_K}
    for key, cap in caps.items():
        if key not in fields:
            raise TraceError(f"{path}: header: missing {key}= in the '# model=...' line")
        if not _INT.fullmatch(fields[key]) or not 1 <= int(fields[key]) <= cap:
            raise TraceError(f"{path}: header: {key}={fields[key]!r} is not an integer in 1..{cap}")
    keys = f"the model line has {', '.join(MODEL_KEYS)}; a layer line {', '.join(LAYER_KEYS)}"
    caveats = [f"header: {k}={v[:40]} is not a route_trace v1 key ({keys}): ignored" for k, v in unknown.items()]
    return fields, expert_bytes, dense_bytes, caveats


def _check_layer_lines(path: Path, expert_bytes: dict[int, int], num_layers: int) -> list[str]:
    """Layer lines must describe layers of the model line's n_layer; the caveat when they
    describe only some (the machine model then uses no measured size at all)."""
    outside = sorted(layer for layer in expert_bytes if not 0 <= layer < num_layers)
    if outside:
        raise TraceError(f"{path}: header: a layer line describes layer {outside[0]}, but n_layer={num_layers} "
                         f"(layers 0..{num_layers - 1})")
    if expert_bytes and len(expert_bytes) < num_layers:
        return [(f"header: layer lines give the expert bytes of {len(expert_bytes)} of {num_layers} layers; "
                 "measured sizes are used only when every layer has them")]
    return []


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
    first_column = {}
    for i, name in enumerate(header):   # which of two same-named columns is meant? neither
        if name in first_column:
            raise TraceError(f"{path}: line {first_data_line}: CSV header names column {name[:30]!r} twice "
                             f"(columns {first_column[name] + 1} and {i + 1})")
        first_column[name] = i
    col = [header.index(c) for c in REQUIRED_COLUMNS]
    fields = operator.itemgetter(*col)
    # machine integers and floats, not Python objects: 8 bytes a value instead of about 36
    ints, weight = array.array("q"), array.array("d")
    for i, row in enumerate(reader):
        if len(row) != len(header):
            raise TraceError(f"{path}: line {first_data_line + 1 + i}: {len(row)} fields, expected "
                             f"{len(header)} (truncated file?)")
        values = fields(row)
        if not _ROW.fullmatch(",".join(values)):   # one match a row; the slow path names the field
            _bad_field(path, first_data_line + 1 + i, row, header, col)
        ints.extend(map(int, values[:-1]))
        weight.append(float(values[-1]))
    if not weight:
        raise TraceError(f"{path}: no routing rows")
    table = np.frombuffer(ints, dtype=np.int64).reshape(-1, len(col) - 1)
    return [table[:, j].copy() for j in range(len(col) - 1)], np.frombuffer(weight, dtype=np.float64)


def _bad_field(path: Path, lineno: int, row: list[str], header: list[str], col: list[int]):
    if row == header:
        raise TraceError(f"{path}: line {lineno}: a second CSV header row")
    for c, name in zip(col[:-1], REQUIRED_COLUMNS):
        value = row[c]
        if not _INT.fullmatch(value) or len(value) > 18:  # 18 digits fit int64
            raise TraceError(f"{path}: line {lineno}: {name} {value[:30]!r} is not an integer")
    if not _WEIGHT.fullmatch(row[col[-1]]):
        raise TraceError(f"{path}: line {lineno}: weight {row[col[-1]][:30]!r} is not a decimal number")
    raise TraceError(f"{path}: line {lineno}: a field holds a comma")   # a quoted "1,2"


def read_route_trace(path: str | Path) -> Trace:
    path = Path(path)
    lines = read_text_lines(path)
    if not looks_like(lines[0]):
        raise TraceError(f"{path}: first line is not {MAGIC!r}")
    comments = [ln for ln in lines if ln.startswith("#")]
    body = [ln for ln in lines if not ln.startswith("#") and ln.strip()]
    fields, expert_bytes, dense_bytes, header_caveats = _parse_header(path, comments)
    L, E, k = int(fields["n_layer"]), int(fields["n_expert"]), int(fields["n_expert_used"])
    header_caveats += _check_layer_lines(path, expert_bytes, L)
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
    j = beyond_float32(weight)   # before the float32 grid takes them, which would make it inf
    if j is not None:
        raise TraceError(f"{path}: line {first_data_line + 1 + j}: weight {weight[j]:g} is beyond float32's "
                         f"range (+-{np.finfo(np.float32).max:.4g})")

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
    caveats = header_caveats
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
