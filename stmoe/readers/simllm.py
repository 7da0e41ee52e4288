"""Reader for simllm's JSON-lines routing traces (schemas simllm-preplay-trace-v1 and -v2).

A ``header`` row carries ``provenance`` (``expert_count``, ``top_k``, ``moe_layer_indices``,
``model_id``); routing rows are ``forward-token`` (v1) or ``observed-dispatch`` (v2), each with
``request_id``, ``phase``, ``token_index``, ``token_id`` and ``routing``: a list of
``{layer_index, expert_ids[, gate_weights]}``. Other row types (request, kv-event, footer) are
bookkeeping and are skipped.

Every field is type-checked (an id is a JSON integer, not a bool or 1.5); a second header, a
token or layer given twice is an error; a layer missing from some tokens, or gate weights or
token ids missing from some, is kept as "not routed" or dropped and said in the trace's caveats.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from stmoe.errors import TraceError
from stmoe.readers.limits import MAX_LAYERS, MAX_TOP_K, check_cells, unrouted_caveats
from stmoe.readers.text import read_text_lines
from stmoe.trace import MAX_EXPERTS, Trace

SCHEMAS = ("simllm-preplay-trace-v1", "simllm-preplay-trace-v2")
ROUTING_ROW_TYPES = ("forward-token", "observed-dispatch")


def looks_like(first_line: str) -> bool:
    try:
        row = json.loads(first_line)
    except (ValueError, RecursionError):   # ValueError: JSONDecodeError, or an over-long integer
        return False
    return isinstance(row, dict) and row.get("schema") in SCHEMAS


def _parse(path: Path, lineno: int, line: str) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TraceError(f"{path}: line {lineno}: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise TraceError(f"{path}: line {lineno}: JSON nested too deeply") from None
    except ValueError as exc:   # an integer of more digits than Python converts (4,300 by default)
        raise TraceError(f"{path}: line {lineno}: a number too long to read ({exc})") from None
    if not isinstance(row, dict):
        raise TraceError(f"{path}: line {lineno}: expected a JSON object, got {type(row).__name__}")
    return row


def _field(path, lineno, row, name):
    if name not in row:
        raise TraceError(f"{path}: line {lineno}: missing field {name!r}")
    return row[name]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(path, where, name, value, lo, hi):
    """`value` as an int in lo..hi, or a TraceError naming where, the field and the value."""
    if not _is_int(value) or not lo <= value <= hi:
        raise TraceError(f"{path}: {where}: {name} must be an integer in {lo}..{hi}, got {value!r}")
    return value


def _text(path, where, name, value):
    if value is not None and not isinstance(value, str):
        raise TraceError(f"{path}: {where}: {name} must be a string, got {value!r}")
    return value


def _header(path, lines):
    """The one header row and its line number; the routing rows as (lineno, row)."""
    header, header_line, tokens = None, 0, []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        row = _parse(path, lineno, line)
        kind = row.get("row_type")
        if kind == "header":
            if header is not None:
                raise TraceError(f"{path}: line {lineno}: a second header row (the first is on "
                                 f"line {header_line})")
            header, header_line = row, lineno
        elif kind in ROUTING_ROW_TYPES:
            tokens.append((lineno, row))
    if header is None:
        raise TraceError(f"{path}: no header row (row_type 'header')")
    return header, header_line, tokens


def read_simllm(path: str | Path) -> Trace:
    path = Path(path)
    header, hl, tokens = _header(path, read_text_lines(path))
    schema = header.get("schema")
    if schema not in SCHEMAS:
        raise TraceError(f"{path}: schema {schema!r} is not one of {', '.join(SCHEMAS)}")
    prov = header.get("provenance")
    if not isinstance(prov, dict):
        raise TraceError(f"{path}: header: missing 'provenance' object")
    for key in ("expert_count", "top_k", "moe_layer_indices"):
        if key not in prov:
            raise TraceError(f"{path}: header: provenance.{key} is missing")
    where = f"line {hl}"
    E = _int(path, where, "provenance.expert_count", prov["expert_count"], 1, MAX_EXPERTS)
    k = _int(path, where, "provenance.top_k", prov["top_k"], 1, min(E, MAX_TOP_K))
    layer_ids = prov["moe_layer_indices"]
    if not isinstance(layer_ids, list) or not 1 <= len(layer_ids) <= MAX_LAYERS \
            or not all(_is_int(x) for x in layer_ids) or len(set(layer_ids)) != len(layer_ids):
        raise TraceError(f"{path}: {where}: provenance.moe_layer_indices must be a list of 1..{MAX_LAYERS} "
                         f"distinct integers, got {str(layer_ids)[:80]}")
    L = len(layer_ids)
    layer_pos = {lid: i for i, lid in enumerate(layer_ids)}
    model = _text(path, where, "provenance.model_id", prov.get("model_id"))
    if not tokens:
        raise TraceError(f"{path}: no routing rows (row_type {' or '.join(ROUTING_ROW_TYPES)})")

    # Group tokens by request in order of first appearance; prefill before decode, then index.
    requests: dict[str, list] = {}
    seen: dict[tuple, int] = {}
    for lineno, row in tokens:
        rid = _field(path, lineno, row, "request_id")
        if not isinstance(rid, str) and not _is_int(rid):
            raise TraceError(f"{path}: line {lineno}: request_id must be a string or integer, got {rid!r}")
        rid = str(rid)
        phase = _field(path, lineno, row, "phase")
        if phase not in ("prefill", "decode"):
            raise TraceError(f"{path}: line {lineno}: phase {phase!r} is not 'prefill' or 'decode'")
        index = _int(path, f"line {lineno}", "token_index", _field(path, lineno, row, "token_index"),
                     0, 2 ** 63 - 1)
        key = (rid, phase, index)
        if key in seen:
            raise TraceError(f"{path}: line {lineno}: request {rid!r} {phase} token_index {index} "
                             f"is given twice (first on line {seen[key]})")
        seen[key] = lineno
        if not isinstance(_field(path, lineno, row, "routing"), list):
            raise TraceError(f"{path}: line {lineno}: 'routing' is not a list")
        requests.setdefault(rid, []).append((phase == "decode", index, lineno, row))
    ordered = []
    for seq, rid in enumerate(requests):
        ordered.extend((seq, item) for item in sorted(requests[rid], key=lambda x: (x[0], x[1])))

    T = len(ordered)
    check_cells(path, T, L, k, sum(len(row["routing"]) for _, row in tokens) * k)
    ids = np.full((T, L, k), -1, dtype=np.int16)
    weights = np.zeros((T, L, k), dtype=np.float64)
    entries = without_weights = 0
    phase = np.zeros(T, dtype=np.int64)
    sequence = np.zeros(T, dtype=np.int64)
    token_ids = np.zeros(T, dtype=np.int64)
    without_token_id = 0
    for t, (seq, (is_decode, _, lineno, row)) in enumerate(ordered):
        phase[t] = int(is_decode)
        sequence[t] = seq
        if row.get("token_id") is None:
            without_token_id += 1
        else:
            token_ids[t] = _int(path, f"line {lineno}", "token_id", row["token_id"], 0, 2 ** 31 - 1)
        done = set()
        for entry in row["routing"]:
            lid = entry.get("layer_index") if isinstance(entry, dict) else None
            if not _is_int(lid) or lid not in layer_pos:
                raise TraceError(f"{path}: line {lineno}: layer_index {lid!r} is not one of the "
                                 f"header's moe_layer_indices")
            if lid in done:
                raise TraceError(f"{path}: line {lineno}: layer_index {lid} is routed twice")
            done.add(lid)
            experts = entry.get("expert_ids")
            if not isinstance(experts, list) or len(experts) != k \
                    or not all(_is_int(x) and 0 <= x < E for x in experts):
                raise TraceError(f"{path}: line {lineno}: layer {lid}: expert_ids must be a list of "
                                 f"{k} integers in 0..{E - 1}, got {str(experts)[:80]}")
            ids[t, layer_pos[lid]] = experts
            entries += 1
            gw = entry.get("gate_weights")
            if gw is None:
                without_weights += 1
            elif not isinstance(gw, list) or len(gw) != k or not all(
                    x is None or (isinstance(x, int | float) and not isinstance(x, bool)) for x in gw):
                raise TraceError(f"{path}: line {lineno}: layer {lid}: gate_weights must be {k} "
                                 f"numbers, got {str(gw)[:80]}")
            else:
                try:
                    weights[t, layer_pos[lid]] = [float("nan") if x is None else float(x) for x in gw]
                except OverflowError:   # an integer beyond any float
                    raise TraceError(f"{path}: line {lineno}: layer {lid}: gate_weights {str(gw)[:80]} "
                                     "holds a number too large for a float") from None
    caveats = unrouted_caveats(ids, phase)
    if 0 < without_weights < entries:
        caveats.append(f"gate weights missing on {without_weights} of {entries} routing entries: "
                       "the trace keeps no gate weights")
    if 0 < without_token_id < T:
        caveats.append(f"token_id missing on {without_token_id} of {T} tokens: the trace keeps no token ids")
    origin = str(path)
    line_of = [item[2] for _, item in ordered]
    try:
        trace = Trace(ids, num_experts=E, phase=phase, sequence=sequence,
                      weights=weights if without_weights == 0 else None,
                      token_ids=token_ids if without_token_id == 0 else None,
                      meta={
                          "name": path.stem,
                          "model": model or "unknown",
                          "model_revision": prov.get("model_revision"),
                          "dtype": prov.get("dtype"),
                          "top_k": k,
                          "format": schema,
                          "source": str(path),
                          "recorded_with": prov.get("runner") or prov.get("framework"),
                          "request_ids": list(requests),
                          "caveats": caveats,
                      }, origin=origin)
    except TraceError as exc:
        # Point at the JSON line of the offending token, which the array index alone hides.
        msg = str(exc)
        m = re.search(r"at token (\d+)", msg)
        if m:
            msg = f"{msg} (line {line_of[int(m.group(1))]})"
        raise TraceError(msg) from None
    return trace
