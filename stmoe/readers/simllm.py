"""Reader for simllm's JSON-lines routing traces (schemas simllm-preplay-trace-v1 and -v2).

A ``header`` row carries ``provenance`` (``expert_count``, ``top_k``, ``moe_layer_indices``,
``model_id``); routing rows are ``forward-token`` (v1) or ``observed-dispatch`` (v2), each with
``request_id``, ``phase``, ``token_index``, ``token_id`` and ``routing``: a list of
``{layer_index, expert_ids[, gate_weights]}``. Other row types (request, kv-event, footer) are
bookkeeping and are skipped.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from stmoe.errors import TraceError
from stmoe.readers.text import read_text_lines
from stmoe.trace import Trace

SCHEMAS = ("simllm-preplay-trace-v1", "simllm-preplay-trace-v2")
ROUTING_ROW_TYPES = ("forward-token", "observed-dispatch")


def looks_like(first_line: str) -> bool:
    try:
        row = json.loads(first_line)
    except json.JSONDecodeError:
        return False
    return isinstance(row, dict) and row.get("schema") in SCHEMAS


def _parse(path: Path, lineno: int, line: str) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TraceError(f"{path}: line {lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(row, dict):
        raise TraceError(f"{path}: line {lineno}: expected a JSON object, got {type(row).__name__}")
    return row


def _field(path, lineno, row, name):
    if name not in row:
        raise TraceError(f"{path}: line {lineno}: missing field {name!r}")
    return row[name]


def read_simllm(path: str | Path) -> Trace:
    path = Path(path)
    lines = read_text_lines(path)
    header = None
    tokens = []  # (lineno, row)
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        row = _parse(path, lineno, line)
        kind = row.get("row_type")
        if kind == "header":
            header = row
        elif kind in ROUTING_ROW_TYPES:
            tokens.append((lineno, row))
    if header is None:
        raise TraceError(f"{path}: no header row (row_type 'header')")
    schema = header.get("schema")
    if schema not in SCHEMAS:
        raise TraceError(f"{path}: schema {schema!r} is not one of {', '.join(SCHEMAS)}")
    prov = header.get("provenance")
    if not isinstance(prov, dict):
        raise TraceError(f"{path}: header: missing 'provenance' object")
    for key in ("expert_count", "top_k", "moe_layer_indices"):
        if key not in prov:
            raise TraceError(f"{path}: header: provenance.{key} is missing")
    E, k = int(prov["expert_count"]), int(prov["top_k"])
    layer_ids = list(prov["moe_layer_indices"])
    L = len(layer_ids)
    layer_pos = {lid: i for i, lid in enumerate(layer_ids)}
    if not tokens:
        raise TraceError(f"{path}: no routing rows (row_type {' or '.join(ROUTING_ROW_TYPES)})")

    # Group tokens by request in order of first appearance; prefill before decode, then index.
    requests: dict[str, list] = {}
    for lineno, row in tokens:
        rid = str(_field(path, lineno, row, "request_id"))
        phase = _field(path, lineno, row, "phase")
        if phase not in ("prefill", "decode"):
            raise TraceError(f"{path}: line {lineno}: phase {phase!r} is not 'prefill' or 'decode'")
        index = _field(path, lineno, row, "token_index")
        requests.setdefault(rid, []).append((phase == "decode", index, lineno, row))
    ordered = []
    for seq, rid in enumerate(requests):
        ordered.extend((seq, item) for item in sorted(requests[rid], key=lambda x: (x[0], x[1])))

    T = len(ordered)
    ids = np.full((T, L, k), -1, dtype=np.int64)
    weights = np.zeros((T, L, k), dtype=np.float64)
    has_weights = True
    phase = np.zeros(T, dtype=np.int64)
    sequence = np.zeros(T, dtype=np.int64)
    token_ids = np.zeros(T, dtype=np.int64)
    has_token_ids = True
    for t, (seq, (is_decode, _, lineno, row)) in enumerate(ordered):
        phase[t] = int(is_decode)
        sequence[t] = seq
        if isinstance(row.get("token_id"), int):
            token_ids[t] = row["token_id"]
        else:
            has_token_ids = False
        routing = _field(path, lineno, row, "routing")
        if not isinstance(routing, list):
            raise TraceError(f"{path}: line {lineno}: 'routing' is not a list")
        for entry in routing:
            lid = entry.get("layer_index") if isinstance(entry, dict) else None
            if lid not in layer_pos:
                raise TraceError(f"{path}: line {lineno}: layer_index {lid!r} is not one of the "
                                 f"header's moe_layer_indices")
            experts = entry.get("expert_ids")
            if not isinstance(experts, list) or len(experts) != k:
                raise TraceError(f"{path}: line {lineno}: layer {lid}: expert_ids must be a list of "
                                 f"{k} ids, got {experts!r}")
            try:
                ids[t, layer_pos[lid]] = experts
            except (TypeError, ValueError):
                raise TraceError(f"{path}: line {lineno}: layer {lid}: expert_ids {experts!r} "
                                 "are not integers") from None
            gw = entry.get("gate_weights")
            if gw is None:
                has_weights = False
            else:
                try:
                    weights[t, layer_pos[lid]] = [float("nan") if x is None else x for x in gw]
                except (TypeError, ValueError):
                    raise TraceError(f"{path}: line {lineno}: layer {lid}: gate_weights {gw!r} "
                                     f"are not {k} numbers") from None
    origin = str(path)
    line_of = [item[2] for _, item in ordered]
    try:
        trace = Trace(ids, num_experts=E, phase=phase, sequence=sequence,
                      weights=weights if has_weights else None,
                      token_ids=token_ids if has_token_ids else None,
                      meta={
                          "name": path.stem,
                          "model": prov.get("model_id", "unknown"),
                          "model_revision": prov.get("model_revision"),
                          "dtype": prov.get("dtype"),
                          "top_k": k,
                          "format": schema,
                          "source": str(path),
                          "recorded_with": prov.get("runner") or prov.get("framework"),
                          "request_ids": list(requests),
                          "caveats": [],
                      }, origin=origin)
    except TraceError as exc:
        # Point at the JSON line of the offending token, which the array index alone hides.
        msg = str(exc)
        m = re.search(r"at token (\d+)", msg)
        if m:
            msg = f"{msg} (line {line_of[int(m.group(1))]})"
        raise TraceError(msg) from None
    return trace
