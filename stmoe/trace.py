"""The routing trace: one token-major record of which experts the router picked.

Shapes (T tokens, L MoE layers, k experts per token, m stale-gate candidates):

- ``expert_ids[T, L, k]`` int16, router rank order, -1 where a cell was not routed; so a trace
  holds at most ``MAX_EXPERTS`` = 32,767 experts per layer (the largest public MoEs have 256 or
  384), and a file claiming more is refused, never wrapped
- ``weights[T, L, k]`` float32 gate weights, optional
- ``phase[T]`` uint8, ``PREFILL`` (0) or ``DECODE`` (1)
- ``sequence[T]`` int32 (a larger id is refused), which prompt/request a token belongs to; each sequence is one
  contiguous run of tokens in time order
- ``token_ids[T]`` int32, optional (a larger id is refused)
- ``stale_gate[T, L, m]`` int16, optional: layer l's router ranking applied to the hidden state
  entering layer l-1 (row l=0 is -1), the "stale gate" a prefetcher can read one layer early;
  files written before it had this name call it ``lookahead``, and are read as before
- ``meta``: a JSON-serialisable dict (model, num_experts, top_k, domain, source, license,
  caveats, synthetic, ...)
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from stmoe.errors import TraceError, one_line
from stmoe.files import MAX_ARRAY_BYTES, atomic_write, check_name, open_regular

PREFILL = 0
DECODE = 1
PHASE_NAMES = {PREFILL: "prefill", DECODE: "decode"}
_PHASE_CODES = {"prefill": PREFILL, "decode": DECODE}

MAX_EXPERTS = int(np.iinfo(np.int16).max)
# Up to this top-k, duplicate expert ids are found by comparing slots pairwise, above it by sorting.
_PAIRWISE_MAX_K = 8
# meta keys the package reads, and the JSON types they must have
META_TYPES = {"name": str, "model": str, "domain": str, "source": str, "license": str,
              "synthetic": bool, "caveats": list, "dtype": str, "model_config": dict}
# meta["model_config"] keys the machine model reads (stmoe.sim.hardware.model_dims)
MODEL_CONFIG_KEYS = ("hidden", "ffn", "heads", "kv_heads", "head_dim")
# a byte count or model size the machine model turns into a float64 exactly
_MAX_SIZE = 2 ** 53

NATIVE_FORMAT = "stmoe-trace"
NATIVE_VERSION = 1


# The decimals a training record's figures are summarised to: those the build script records
# losses at (scripts/build_bundled_traces.py). Traces built before it rounded carry float noise
# (a final_loss_last50 of 3.2372300000000003).
TRAINING_DECIMALS = 4


def _rounded(value):
    """`value` with every float in it (in nested dicts too) to TRAINING_DECIMALS decimals."""
    if isinstance(value, float):
        return round(value, TRAINING_DECIMALS)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def phase_code(phase: str | int) -> int:
    """Map 'prefill'/'decode' (or 0/1) to the stored code, with a clear error otherwise."""
    if isinstance(phase, str) and phase in _PHASE_CODES:
        return _PHASE_CODES[phase]
    if isinstance(phase, (int, np.integer)) and int(phase) in PHASE_NAMES:
        return int(phase)
    raise TraceError(f"phase: unknown phase {phase!r}; expected 'prefill' or 'decode'")


def beyond_float32(values: np.ndarray) -> int | None:
    """The flat index of the first finite value too large for float32 (gate weights are stored
    as float32, and casting such a value makes it inf with a RuntimeWarning), or None. Two
    reductions without a temporary array; the search runs only when one finds something."""
    if values.dtype.kind != "f" or values.dtype.itemsize <= 4 or values.size == 0:
        return None
    top = float(np.finfo(np.float32).max)
    if not (np.fmax.reduce(values, axis=None) > top or np.fmin.reduce(values, axis=None) < -top):
        return None
    big = np.flatnonzero(np.isfinite(values) & (np.abs(values) > top))   # infinities are another error
    return int(big[0]) if big.size else None


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


class Trace:
    """A validated routing trace. Construction checks every field and names what is wrong."""

    def __init__(
        self,
        expert_ids: Any,
        *,
        num_experts: int,
        phase: Any = None,
        sequence: Any = None,
        weights: Any = None,
        token_ids: Any = None,
        stale_gate: Any = None,
        meta: dict | None = None,
        origin: str = "trace",
    ):
        self.origin = origin  # prefixed to error messages: a file name or "trace"
        ids = self._int_array("expert_ids", expert_ids, ndim=3)
        if ids.shape[0] == 0 or ids.shape[1] == 0 or ids.shape[2] == 0:
            self._fail("expert_ids", f"needs at least one token, layer and slot; shape is {ids.shape}")
        T, L, k = ids.shape
        if not _is_int(num_experts):
            self._fail("num_experts", f"must be an integer, got {num_experts!r}")
        E = int(num_experts)
        if not 1 <= E <= MAX_EXPERTS:
            self._fail("num_experts", f"{E} is outside 1..{MAX_EXPERTS} (expert ids are stored as int16)")
        if k > E:
            self._fail("expert_ids", f"top-k {k} exceeds num_experts {E}")
        self._check_ids("expert_ids", ids, E)
        self.expert_ids = ids.astype(np.int16, copy=False)

        if phase is None:
            phase = np.full(T, DECODE, dtype=np.uint8)
        ph = np.asarray(phase)
        if ph.dtype.kind in "US":
            bad = ~np.isin(ph, list(_PHASE_CODES))
            if bad.any():
                self._fail("phase", f"unknown value {str(ph[bad][0])!r} at token {int(np.argmax(bad))}")
            ph = np.where(ph == "prefill", PREFILL, DECODE)
        ph = self._int_array("phase", ph, ndim=1, length=T)
        bad = (ph != PREFILL) & (ph != DECODE)
        if bad.any():
            self._fail("phase", f"value {int(ph[bad][0])} at token {int(np.argmax(bad))} is not 0 (prefill) or 1 (decode)")
        self.phase = ph.astype(np.uint8, copy=False)

        seq = np.zeros(T, dtype=np.int32) if sequence is None else sequence
        seq = self._fit("sequence", self._int_array("sequence", seq, ndim=1, length=T), np.int32)
        starts = np.flatnonzero(np.diff(seq)) + 1
        run_ids = seq[np.concatenate([[0], starts])]
        if len(np.unique(run_ids)) != len(run_ids):
            dup = run_ids[np.flatnonzero(np.bincount(np.unique(run_ids, return_inverse=True)[1]) > 1)[0]]
            self._fail("sequence", f"sequence {int(dup)} is not one contiguous run of tokens")
        self.sequence = seq

        if weights is not None:
            w = np.asarray(weights)
            if w.dtype.kind not in "fiu":
                self._fail("weights", f"must be numeric, got dtype {w.dtype}")
            if w.shape != ids.shape:
                self._fail("weights", f"shape {w.shape} does not match expert_ids {ids.shape}")
            big = beyond_float32(w)
            if big is not None:
                t, l, s = (int(x) for x in np.unravel_index(big, w.shape))
                self._fail("weights", f"value {w.flat[big]:g} at token {t}, layer {l}, slot {s} is beyond "
                                      f"float32's range (+-{np.finfo(np.float32).max:.4g})")
            w = w.astype(np.float32, copy=False)
            # a float64 sum is finite exactly when every weight is (float32 values cannot overflow
            # it); only then is the cell-by-cell search, three masks of the whole grid, needed
            bad = np.zeros((), bool) if np.isfinite(w.sum(dtype=np.float64)) else (ids >= 0) & ~np.isfinite(w)
            if bad.any():
                t, l, s = (int(x) for x in np.argwhere(bad)[0])
                self._fail("weights", f"non-finite value {w[t, l, s]} at token {t}, layer {l}, slot {s}")
        self.weights = None if weights is None else w

        if token_ids is not None:
            token_ids = self._fit("token_ids", self._int_array("token_ids", token_ids, ndim=1, length=T), np.int32)
        self.token_ids = token_ids

        if stale_gate is not None:
            sg = self._int_array("stale_gate", stale_gate, ndim=3)
            if sg.shape[:2] != (T, L):
                self._fail("stale_gate", f"shape {sg.shape} does not match (tokens, layers) = {(T, L)}")
            self._check_ids("stale_gate", sg, E)
            stale_gate = sg.astype(np.int16, copy=False)
        self.stale_gate = stale_gate

        if meta is not None and not isinstance(meta, dict):
            self._fail("meta", f"must be a dict, got {type(meta).__name__}")
        self.meta = dict(meta or {})
        for key, kind in META_TYPES.items():
            value = self.meta.get(key)
            if value is not None and not isinstance(value, kind):
                self._fail(f"meta.{key}", f"must be a {kind.__name__}, got {value!r}")
        if not all(isinstance(c, str) for c in self.meta.get("caveats") or []):
            self._fail("meta.caveats", f"must be a list of strings, got {self.meta['caveats']!r}")
        self._check_model_sizes(L)
        self.meta["num_experts"] = E
        if not _is_int(self.meta.get("top_k", k)):
            self._fail("meta.top_k", f"must be an integer, got {self.meta['top_k']!r}")
        self.meta["top_k"] = int(self.meta.get("top_k", k))
        if self.meta["top_k"] != k:
            self._fail("meta.top_k", f"{self.meta['top_k']} does not match expert_ids slots {k}")
        self.meta["caveats"] = list(self.meta.get("caveats") or [])
        try:
            # ensure_ascii=False and encode: a lone surrogate ("\\ud800" in a JSON file) would pass
            # json.dumps and fail only when a report or `info` writes the text out
            json.dumps(self.meta, ensure_ascii=False).encode("utf-8")
        except TypeError as exc:
            self._fail("meta", f"not JSON-serialisable ({exc})")
        except UnicodeEncodeError:
            self._fail("meta", "holds text that is not valid Unicode (a lone surrogate)")

    # ----------------------------------------------------------------- validation helpers
    def _fail(self, field: str, problem: str) -> None:
        raise TraceError(f"{self.origin}: {field}: {problem}")

    def _check_model_sizes(self, L: int) -> None:
        """meta["expert_bytes"] and meta["dense_bytes"] (one entry per layer: a byte count, or
        null/0 where unknown) and
        meta["model_config"]'s sizes are numbers the machine model computes with: a bool, a
        string or a float there would time a model of the wrong size."""
        def size(value, lo):
            return value is None or (_is_int(value) and lo <= value <= _MAX_SIZE)
        for field in ("expert_bytes", "dense_bytes"):   # per layer, as the route_trace header records them
            values = self.meta.get(field)
            if values is not None and not (isinstance(values, list) and len(values) == L
                                           and all(size(b, 0) for b in values)):
                bad = next((b for b in values if not size(b, 0)), values) if isinstance(values, list) else values
                self._fail(f"meta.{field}", f"must be a list of {L} byte counts (integers in "
                                            f"0..2**53, or null), got {str(bad)[:80]}")
        config = self.meta.get("model_config") or {}
        for key in MODEL_CONFIG_KEYS:
            if not size(config.get(key), 1):
                self._fail(f"meta.model_config.{key}", f"must be an integer in 1..2**53 or null, "
                                                      f"got {str(config[key])[:80]}")

    def _int_array(self, field, value, ndim, length=None) -> np.ndarray:
        arr = np.asarray(value)
        if arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
                self._fail(field, "must hold integers")
            if arr.size and np.abs(arr).max() >= 2.0 ** 62:
                self._fail(field, f"value {np.abs(arr).max():g} is far outside any id's range")
            arr = arr.astype(np.int64)
        elif arr.dtype.kind not in "iu":  # a bool is not an id
            self._fail(field, f"must hold integers, got dtype {arr.dtype}")
        if arr.ndim != ndim:
            self._fail(field, f"must have {ndim} dimension(s), got shape {arr.shape}")
        if length is not None and arr.shape[0] != length:
            self._fail(field, f"has {arr.shape[0]} entries for {length} tokens")
        return arr

    def _fit(self, field: str, arr: np.ndarray, dtype) -> np.ndarray:
        """`arr` stored as `dtype`; a value that would wrap is refused."""
        info = np.iinfo(dtype)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            value = arr.min() if arr.min() < info.min else arr.max()
            self._fail(field, f"value {int(value)} does not fit {np.dtype(dtype).name} "
                              f"({info.min}..{info.max})")
        return arr.astype(dtype, copy=False)

    def _check_ids(self, field: str, ids: np.ndarray, E: int) -> None:
        bad = (ids < -1) | (ids >= E) if ids.size and (ids.min() < -1 or ids.max() >= E) else np.zeros((), bool)
        if bad.any():
            t, l, s = (int(x) for x in np.argwhere(bad)[0])
            self._fail(field, f"expert id {int(ids[t, l, s])} at token {t}, layer {l}, slot {s} "
                              f"is outside 0..{E - 1} (or -1 for not routed)")
        k = ids.shape[2]
        if k <= _PAIRWISE_MAX_K:
            # k(k-1)/2 vector compares beat sorting every cell for small k (8: 0.5 ms against 0.9
            # ms per 20,000 cells); they grow as k^2 (k = 1,024: 4 s for 40 cells)
            for i in range(k - 1):
                a = ids[:, :, i]
                for j in range(i + 1, k):
                    dup = (a == ids[:, :, j]) & (a >= 0)
                    if dup.any():
                        t, l = (int(x) for x in np.argwhere(dup)[0])
                        self._fail(field, f"expert id {int(a[t, l])} appears twice at token {t}, layer {l}")
            return
        ranked = np.sort(ids, axis=2)
        dup = ((ranked[:, :, 1:] == ranked[:, :, :-1]) & (ranked[:, :, 1:] >= 0)).any(axis=2)
        if dup.any():
            t, l = (int(x) for x in np.argwhere(dup)[0])
            row = ranked[t, l]
            twice = row[1:][(row[1:] == row[:-1]) & (row[1:] >= 0)][0]
            self._fail(field, f"expert id {int(twice)} appears twice at token {t}, layer {l}")

    # ----------------------------------------------------------------- shape and summary
    @property
    def num_tokens(self) -> int:
        return int(self.expert_ids.shape[0])

    @property
    def num_layers(self) -> int:
        return int(self.expert_ids.shape[1])

    @property
    def top_k(self) -> int:
        return int(self.expert_ids.shape[2])

    @property
    def num_experts(self) -> int:
        return int(self.meta["num_experts"])

    @property
    def is_synthetic(self) -> bool:
        return bool(self.meta.get("synthetic", False))

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.meta.get("model") or self.origin)

    @property
    def label(self) -> str:
        """A display name that says 'synthetic' for generated traces."""
        return f"{self.name} (synthetic)" if self.is_synthetic else self.name

    def sequence_ids(self) -> np.ndarray:
        """Sequence ids in the order they appear."""
        starts = np.concatenate([[0], np.flatnonzero(np.diff(self.sequence)) + 1])
        return self.sequence[starts]

    def previous_token(self) -> np.ndarray:
        """Index of the previous token of the same sequence, or -1 at a sequence start."""
        prev = np.arange(self.num_tokens) - 1
        prev[0] = -1
        prev[1:][self.sequence[1:] != self.sequence[:-1]] = -1
        return prev

    def summary(self) -> dict:
        """What `stmoe info` prints: sizes, tokens per phase, optional fields, caveats, and the
        training record without its curves (floats to TRAINING_DECIMALS decimals)."""
        n_prefill = int(np.sum(self.phase == PREFILL))
        return {
            "name": self.name,
            "model": self.meta.get("model"),
            "synthetic": self.is_synthetic,
            "num_layers": self.num_layers,
            "num_experts": self.num_experts,
            "top_k": self.top_k,
            "tokens": self.num_tokens,
            "prefill_tokens": n_prefill,
            "decode_tokens": self.num_tokens - n_prefill,
            "sequences": int(len(self.sequence_ids())),
            "unrouted_cells": int(np.sum(self.expert_ids[:, :, 0] < 0)),
            "fields": {
                "weights": self.weights is not None,
                "token_ids": self.token_ids is not None,
                "stale_gate": self.stale_gate is not None,
            },
            "domain": self.meta.get("domain"),
            "source": self.meta.get("source"),
            "license": self.meta.get("license"),
            "caveats": list(self.meta.get("caveats", [])),
            # how the recorded model was trained (bundled traces), without the loss curves
            "training": ({k: _rounded(v) for k, v in self.meta["training"].items() if not k.endswith("_curve")}
                         if isinstance(self.meta.get("training"), dict) else None),
        }

    def __repr__(self) -> str:
        # one readable line: notebooks show a trace by ending a cell with it
        return (f"Trace {self.label}: {self.num_layers} MoE layers of {self.num_experts} experts, top-{self.top_k}; "
                f"{self.num_tokens} tokens in {len(self.sequence_ids())} sequence(s)")

    # ----------------------------------------------------------------- selection
    def select(self, *, phase: str | int | None = None, sequences: Iterable[int] | None = None,
               layers: tuple[int, int] | slice | None = None, tokens: Any = None) -> "Trace":
        """A new trace restricted to a phase, some sequences, a layer range [lo, hi) and/or
        a boolean or index token mask. Errors name the bad selector."""
        mask = np.ones(self.num_tokens, dtype=bool)
        if phase is not None:
            mask &= self.phase == phase_code(phase)
        if sequences is not None:
            wanted = np.asarray(list(sequences), dtype=np.int64)
            unknown = np.setdiff1d(wanted, self.sequence)
            if unknown.size:
                raise TraceError(f"{self.origin}: sequences: no sequence {int(unknown[0])} in this trace")
            mask &= np.isin(self.sequence, wanted)
        if tokens is not None:
            tok = np.asarray(tokens)
            if tok.dtype == bool:
                if tok.shape != (self.num_tokens,):
                    raise TraceError(f"{self.origin}: tokens: mask of shape {tok.shape} for {self.num_tokens} tokens")
                mask &= tok
            else:
                if tok.size and (not np.issubdtype(tok.dtype, np.integer)
                                 or tok.min() < 0 or tok.max() >= self.num_tokens):
                    raise TraceError(f"{self.origin}: tokens: indices must be integers in "
                                     f"0..{self.num_tokens - 1}, got {tok.ravel()[:3].tolist()}...")
                m2 = np.zeros(self.num_tokens, dtype=bool)
                m2[tok] = True
                mask &= m2
        if layers is None:
            lsl = slice(None)
        else:
            lo, hi = (layers.start or 0, self.num_layers if layers.stop is None else layers.stop) \
                if isinstance(layers, slice) else layers
            if not (0 <= lo < hi <= self.num_layers):
                raise TraceError(f"{self.origin}: layers: range [{lo}, {hi}) is outside 0..{self.num_layers}")
            lsl = slice(lo, hi)
        if not mask.any():
            raise TraceError(f"{self.origin}: selection is empty (phase={phase!r}, sequences={sequences!r})")

        def take(a, per_layer=False):
            if a is None:
                return None
            a = a[mask]
            return a[:, lsl] if per_layer else a

        return Trace(
            take(self.expert_ids, True), num_experts=self.num_experts, phase=take(self.phase),
            sequence=take(self.sequence), weights=take(self.weights, True),
            token_ids=take(self.token_ids), stale_gate=take(self.stale_gate, True),
            meta=self.meta, origin=self.origin,
        )

    # ----------------------------------------------------------------- native format
    def save(self, path: str | os.PathLike) -> Path:
        """Write the native format (compressed .npz + JSON metadata) atomically."""
        path = check_save_path(path)
        arrays = {"expert_ids": self.expert_ids, "phase": self.phase, "sequence": self.sequence}
        for name in ("weights", "token_ids", "stale_gate"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        if self.num_experts <= 255:
            # Ids shifted by one fit a byte (-1 -> 0): half the bytes to inflate on load.
            for name in ("expert_ids", "stale_gate"):
                if name in arrays:
                    arrays[name] = (arrays[name] + 1).astype(np.uint8)
        header = {"format": NATIVE_FORMAT, "version": NATIVE_VERSION, "meta": self.meta}
        arrays["header_json"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TraceError(f"{path}: cannot write here ({exc.strerror or exc})") from None
        atomic_write(path, lambda fh: _write_npz(fh, arrays))
        return path


def _write_npz(fh, arrays: dict[str, np.ndarray]) -> None:
    """An .npz that `np.load` reads, deflating each array unless that saves under 10%: inflating
    incompressible gate weights would dominate load time for no gain in size."""
    with zipfile.ZipFile(fh, "w") as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            raw = buf.getvalue()
            packed = zlib.compress(raw, 6)
            method = zipfile.ZIP_DEFLATED if len(packed) < 0.9 * len(raw) else zipfile.ZIP_STORED
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), raw,
                        compress_type=method, compresslevel=6)


def check_save_path(path: str | os.PathLike) -> Path:
    """The path `Trace.save` will write, checked before any costly work produces the trace."""
    check_name(path, TraceError)
    path = Path(path)
    if path.suffix != ".npz":
        raise TraceError(f"{path}: native traces are saved as .npz")
    if path.is_dir():
        raise TraceError(f"{path}: is a directory, not a trace file")
    blocker = next((p for p in path.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise TraceError(f"{path}: {blocker} is a file, not a directory")
    return path


def read_native(path: str | os.PathLike) -> Trace:
    """Read a trace written by `Trace.save`. Nothing in the file is trusted: it must be a regular
    file and a zip; each array member's claimed shape must match the bytes the zip directory says
    it holds, and all of them together at most `MAX_ARRAY_BYTES`, before anything is inflated;
    the header and its meta must have the types the package expects."""
    path = Path(path)
    with open_regular(path) as fh:
        # np.load falls back to unpickling anything that is not a zip, whose error talks of pickles
        if fh.read(2) != b"PK":
            raise TraceError(f"{path}: not an .npz (zip) archive")
        fh.seek(0)
        try:
            with zipfile.ZipFile(fh) as zf:
                members = {info.filename: info for info in zf.infolist()}
                # zipfile inflates bzip2 and lzma members past the size the directory states; the
                # writers of .npz files (stmoe, numpy) use stored or deflated members only
                odd = next((i for i in members.values()
                            if i.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)), None)
                if odd is not None:
                    raise TraceError(f"{path}: member {odd.filename} is compressed with zip method "
                                     f"{odd.compress_type}; an .npz trace holds stored or deflated members only")
                header = _read_header(path, zf, members)
                wanted = [n for n in _NATIVE_ARRAYS if f"{n}.npy" in members]
                if "lookahead" in wanted and "stale_gate" in wanted:
                    wanted.remove("lookahead")
                missing = {"expert_ids", "phase", "sequence"} - set(wanted)
                if missing:
                    raise TraceError(f"{path}: missing array(s) {', '.join(sorted(missing))}")
                total = sum(members[f"{n}.npy"].file_size for n in wanted)
                if total > MAX_ARRAY_BYTES:
                    raise TraceError(f"{path}: its arrays inflate to {total} bytes, over the "
                                     f"{MAX_ARRAY_BYTES}-byte limit (raise STMOE_MAX_ARRAY_BYTES to read it)")
                arrays = {n: _read_member(path, zf, members[f"{n}.npy"]) for n in wanted}
        except TraceError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError,
                RuntimeError) as exc:  # RuntimeError: an encrypted member
            raise TraceError(f"{path}: cannot read as an .npz trace ({one_line(exc)})") from None
    if "lookahead" in arrays:   # the field's earlier name
        arrays["stale_gate"] = arrays.pop("lookahead")
    for name in ("expert_ids", "stale_gate"):
        if name in arrays and arrays[name].dtype == np.uint8:
            ids = arrays[name] = arrays[name].astype(np.int16)
            ids -= 1   # in place: a second int16 grid would be 150 MB at 200k tokens x 48 x 8
    meta = header["meta"]
    if "num_experts" not in meta:
        raise TraceError(f"{path}: meta.num_experts is missing")
    return Trace(arrays.pop("expert_ids"), num_experts=meta["num_experts"], meta=meta,
                 origin=str(path), **arrays)


_NATIVE_ARRAYS = ("expert_ids", "phase", "sequence", "weights", "token_ids", "stale_gate", "lookahead")
_MAX_HEADER_BYTES = 1 << 24


def _read_header(path: Path, zf: zipfile.ZipFile, members: dict) -> dict:
    info = members.get("header_json.npy")
    if info is None:
        raise TraceError(f"{path}: not an stmoe trace (no header_json array)")
    if info.file_size > _MAX_HEADER_BYTES:
        raise TraceError(f"{path}: header_json is {info.file_size} bytes, over {_MAX_HEADER_BYTES}")
    raw = _read_member(path, zf, info)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise TraceError(f"{path}: header_json must be a 1-D uint8 array, got {raw.dtype} {raw.shape}")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise TraceError(f"{path}: header_json is not JSON ({one_line(exc)})") from None
    if not isinstance(header, dict):
        raise TraceError(f"{path}: header_json must be a JSON object, got {type(header).__name__}")
    if header.get("format") != NATIVE_FORMAT:
        raise TraceError(f"{path}: format {header.get('format')!r} is not {NATIVE_FORMAT!r}")
    if header.get("version") != NATIVE_VERSION or isinstance(header.get("version"), bool):
        raise TraceError(f"{path}: format version {header.get('version')!r} is not supported "
                         f"(this stmoe reads version {NATIVE_VERSION})")
    header.setdefault("meta", {})
    if not isinstance(header["meta"], dict):
        raise TraceError(f"{path}: meta must be a JSON object, got {type(header['meta']).__name__}")
    return header


def _npy_header(path: Path, name: str, m) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran order, dtype) from an .npy member's header; numpy's own complaints (a
    wrong magic, a header that is not a dict, an unknown dtype) become a TraceError naming the member."""
    try:
        version = np.lib.format.read_magic(m)
        if version not in ((1, 0), (2, 0)):
            raise TraceError(f"{path}: {name}: .npy version {version} is not supported")
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(m)
    except (ValueError, EOFError, TypeError) as exc:   # TraceError is a ValueError: let it through
        if isinstance(exc, TraceError):
            raise
        # numpy's first sentence says what is wrong (the rest advises on pickles, which stmoe never
        # loads); it may quote the whole header, or an object's address for a bare name
        problem = re.sub(r" at 0x[0-9a-fA-F]+", "", re.split(r"\.\s", str(exc))[0])
        problem = problem if len(problem) <= 160 else problem[:150] + " ..."
        raise TraceError(f"{path}: {name}: malformed .npy header ({problem})") from None
    if any(n < 0 for n in shape):
        raise TraceError(f"{path}: {name}: malformed .npy header (negative dimension in shape {shape})")
    return shape, fortran, dtype


def _read_member(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """One .npy member, its header checked against the zip directory's size before inflating."""
    name = info.filename
    with zf.open(info) as m:
        shape, fortran, dtype = _npy_header(path, name, m)
        if dtype.hasobject or dtype.kind not in "biuf":
            raise TraceError(f"{path}: {name}: dtype {dtype} is not a plain number type")
        count = 1
        for n in shape:
            count *= n
        claimed = count * dtype.itemsize
        if m.tell() + claimed != info.file_size:
            raise TraceError(f"{path}: {name}: claims shape {shape} ({claimed} bytes) but the zip "
                             f"directory says it holds {info.file_size - m.tell()}")
        arr = np.empty(count, dtype=dtype)
        buf = memoryview(arr.view(np.uint8))
        pos = 0
        while pos < claimed:
            chunk = m.read(min(1 << 24, claimed - pos))
            if not chunk:
                raise TraceError(f"{path}: {name}: truncated after {pos} of {claimed} bytes")
            buf[pos:pos + len(chunk)] = chunk
            pos += len(chunk)
    return arr.reshape(shape, order="F" if fortran else "C")
