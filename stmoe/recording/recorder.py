"""Record a routing trace from a Hugging Face transformers MoE causal LM.

`record(model, inputs, ...)` runs the model over token sequences (teacher-forced) and optionally
generates greedily after each one, and captures, per token and MoE layer, the router's top-k
expert ids and gate weights and the *stale gate* ranking: layer l's router applied to the input
of layer l-1's router (the normalised hidden state entering layer l-1's MoE block), i.e. the
"stale gate" a prefetcher can evaluate as soon as layer l-1 is routed.

It works through forward hooks on the router modules, which in transformers 5 every MoE
architecture exposes as one module returning ``(logits, top-k weights, top-k indices)`` and
declares in ``_can_record_outputs["router_logits"]`` (Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE,
GraniteMoE, DeepSeek-V3, gpt-oss, ...). Calling the router module itself for the stale gate keeps
each architecture's own scoring (softmax or sigmoid, grouped top-k, bias, renormalisation).

torch and transformers are imported only when recording, so `import stmoe` needs neither.
"""

from __future__ import annotations

import datetime as _dt
import functools
import inspect
import os
import re
import socket
import urllib.parse
from typing import Any, Iterable

import numpy as np

from stmoe.errors import StmoeError
from stmoe.trace import DECODE, PREFILL, Trace, check_save_path
from stmoe.version import __version__

STALE_GATE_DEFINITION = ("layer l's router applied to the input of layer l-1's router (the "
                        "normalised hidden state entering layer l-1's MoE block); row l=0 is -1")


class RecordError(StmoeError):
    """A model cannot be recorded (no router found, bad inputs or settings)."""


def find_routers(model) -> list:
    """The model's router modules, one per MoE layer, in layer order."""
    recorder = getattr(type(model), "_can_record_outputs", None) or {}
    target = recorder.get("router_logits")
    target_class = getattr(target, "target_class", target)
    found = []
    for name, module in model.named_modules():
        if target_class is not None and isinstance(target_class, type):
            hit = isinstance(module, target_class)
        else:  # older/custom models: fall back to the naming convention
            hit = re.search(r"Top[kK]Router$", type(module).__name__) is not None
        if hit:
            found.append((_layer_number(name), name, module))
    if not found:
        raise RecordError(f"model {type(model).__name__}: no MoE router module found; supported "
                          "are transformers MoE models whose router returns (logits, weights, ids)")
    found.sort(key=lambda item: item[0])
    return [module for _, _, module in found]


def _layer_number(name: str) -> int:
    m = re.search(r"layers\.(\d+)\.", name) or re.search(r"\.(\d+)\.", name)
    return int(m[1]) if m else -1


def _rank(weights, ids):
    """Order each token's k picks by gate weight, largest first (stable), so every architecture's
    trace is in rank order even where the router's top-k is unsorted (DeepSeek-V3)."""
    import torch
    order = torch.argsort(weights.float(), dim=-1, descending=True, stable=True)
    return torch.gather(weights, -1, order), torch.gather(ids, -1, order)


class _Capture:
    """Forward hooks on every router: ids, weights and stale gate of the current forward pass."""

    def __init__(self, routers: list, stale_gate: bool):
        self.routers = routers
        self.stale_gate = stale_gate
        self.busy = False  # the stale gate calls a router; its own hook must not record that
        self.reset()
        self.handles = [r.register_forward_hook(self._hook(j)) for j, r in enumerate(routers)]

    def reset(self) -> None:
        self.ids: dict[int, Any] = {}
        self.weights: dict[int, Any] = {}
        self.ahead: dict[int, Any] = {}
        self.inputs: dict[int, Any] = {}

    def _hook(self, j: int):
        def hook(module, args, output):
            if self.busy:
                return
            import torch
            hidden = args[0].reshape(-1, args[0].shape[-1]).detach()
            w, ids = _rank(output[1].detach(), output[2].detach())
            self.ids[j], self.weights[j] = ids.cpu(), w.float().cpu()
            if self.stale_gate:
                if j > 0:
                    self.busy = True
                    try:
                        with torch.no_grad():
                            stale = module(self.inputs.pop(j - 1))
                    finally:
                        self.busy = False
                    self.ahead[j] = _rank(stale[1].detach(), stale[2].detach())[1].cpu()
                self.inputs[j] = hidden
        return hook

    def take(self, num_tokens: int, num_layers: int, k: int):
        """This forward's rows as numpy: ids [n, L, k], weights [n, L, k], stale gate [n, L, k]."""
        missing = [j for j in range(num_layers) if j not in self.ids]
        if missing:
            raise RecordError(f"routers of MoE layers {missing} did not run in the forward pass")
        ids = np.stack([self.ids[j].numpy() for j in range(num_layers)], axis=1)
        weights = np.stack([self.weights[j].numpy() for j in range(num_layers)], axis=1)
        ahead = np.full((num_tokens, num_layers, k), -1, dtype=np.int16)
        for j, a in self.ahead.items():
            ahead[:, j] = a.numpy()
        self.reset()
        if ids.shape[0] != num_tokens:
            raise RecordError(f"router saw {ids.shape[0]} tokens, expected {num_tokens}")
        return ids.astype(np.int16), weights.astype(np.float32), ahead

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def _as_sequences(inputs, tokenizer) -> list[list[int]]:
    if isinstance(inputs, str):
        inputs = [inputs]
    seqs = []
    for i, item in enumerate(inputs):
        if isinstance(item, str):
            if tokenizer is None:
                raise RecordError(f"inputs[{i}]: text needs a tokenizer (pass tokenizer=...)")
            item = tokenizer(item, add_special_tokens=True)["input_ids"]
        ids = [int(x) for x in np.asarray(item).reshape(-1)]
        if not ids:
            raise RecordError(f"inputs[{i}]: empty sequence")
        seqs.append(ids)
    if not seqs:
        raise RecordError("inputs: no sequences to record")
    return seqs


# Seconds to wait for the hub to accept a connection before using only the local cache.
HUB_CONNECT_TIMEOUT = 3.0


@functools.cache
def hub_unreachable() -> str | None:
    """Why the Hugging Face hub (HF_ENDPOINT) cannot be reached, or None. Asked once, with one
    short connection: unreached, transformers retries each file for about a minute (48 s and 23
    lines for a hub id with no network). Behind a proxy the proxy decides, so it is not asked."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
                                       "ALL_PROXY", "all_proxy")):
        return None
    url = urllib.parse.urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (80 if url.scheme == "http" else 443)
    where = f"{url.hostname}:{port}"
    try:
        socket.create_connection((url.hostname, port), timeout=HUB_CONNECT_TIMEOUT).close()
    except OSError as exc:
        return f"the hub {where} is unreachable: {exc.strerror or exc}"
    return None


def from_pretrained(loader, model_id: str, **kwargs):
    """`loader.from_pretrained` with a missing model, an unreachable hub or a bad revision
    reported as one RecordError line (transformers raises OSError with a long hint). A hub id
    with the hub unreachable is looked up in the local cache only, at once."""
    offline = None
    if not os.path.isdir(model_id) and not kwargs.get("local_files_only") \
            and os.environ.get("HF_HUB_OFFLINE", "0") in ("", "0") and (offline := hub_unreachable()):
        kwargs["local_files_only"] = True
    try:
        return loader.from_pretrained(model_id, **kwargs)
    except (OSError, ValueError) as exc:
        if offline:
            raise RecordError(f"model {model_id!r}: not in the local Hugging Face cache, and {offline}") from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RecordError(f"model {model_id!r}: cannot load ({first})") from None


def _load(model, tokenizer, revision, dtype, device):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model_id = model
    model = from_pretrained(AutoModelForCausalLM, model_id, revision=revision, dtype=dtype or "auto")
    if tokenizer is None:
        tokenizer = from_pretrained(AutoTokenizer, model_id, revision=revision)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device), tokenizer


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm
    return tqdm(total=total, unit="tok", desc="stmoe record", disable=not enabled)


def record(model, inputs: str | Iterable, *, tokenizer=None, prompt_tokens: int | None = None,
           generate: int = 0, stale_gate: bool = True, model_id: str | None = None,
           revision: str | None = None, dtype: str | None = None, device: str | None = None,
           prompt_source: str | None = None, meta: dict | None = None, progress: bool = True,
           path=None) -> Trace:
    """Record the routing of `model` (a transformers model, or a model id / path to load) over
    `inputs` (texts, which need `tokenizer`, or token-id sequences), one sequence per input.

    Each input is run teacher-forced in one forward pass; its first `prompt_tokens` tokens are
    marked prefill and the rest decode (None: the whole input is prefill). With `generate` > 0,
    that many tokens are then generated greedily one at a time (decode phase, KV cache).
    Returns the Trace and, with `path`, also saves it there atomically.
    """
    import torch

    if isinstance(generate, bool) or not isinstance(generate, int) or generate < 0:
        raise RecordError(f"generate: must be an integer >= 0, got {generate!r}")
    if prompt_tokens is not None and (not isinstance(prompt_tokens, int) or prompt_tokens < 0):
        raise RecordError(f"prompt_tokens: must be an integer >= 0 or None, got {prompt_tokens!r}")
    if path is not None:
        check_save_path(path)
    if isinstance(model, str):
        model_id = model_id or model
        model, tokenizer = _load(model, tokenizer, revision, dtype, device)
    elif device is not None:
        model = model.to(device)
    seqs = _as_sequences(inputs, tokenizer)
    routers = find_routers(model)
    L = len(routers)
    k = int(routers[0].top_k)
    E = int(getattr(routers[0], "num_experts", routers[0].weight.shape[0]))
    dev = next(model.parameters()).device
    model.eval()
    # transformers 5.2x renamed `past_key_values` to `cache` (in and out); support both.
    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    capture = _Capture(routers, stale_gate)
    rows: dict[str, list] = {f: [] for f in ("ids", "weights", "ahead", "phase", "seq", "tok")}

    def keep(s: int, tokens: list[int], phases: np.ndarray) -> None:
        ids, w, ahead = capture.take(len(tokens), L, k)
        for field, value in (("ids", ids), ("weights", w), ("ahead", ahead), ("phase", phases),
                             ("seq", np.full(len(tokens), s, np.int32)),
                             ("tok", np.asarray(tokens, np.int32))):
            rows[field].append(value)

    bar = _progress(sum(len(s) for s in seqs) + generate * len(seqs), progress)
    try:
        with torch.no_grad():
            for s, ids in enumerate(seqs):
                n_prompt = len(ids) if prompt_tokens is None else min(prompt_tokens, len(ids))
                phases = np.where(np.arange(len(ids)) < n_prompt, PREFILL, DECODE).astype(np.uint8)
                out = model(input_ids=torch.tensor([ids], device=dev), use_cache=generate > 0)
                keep(s, ids, phases)
                bar.update(len(ids))
                for _ in range(generate):
                    nxt = int(out.logits[0, -1].argmax())
                    out = model(input_ids=torch.tensor([[nxt]], device=dev), use_cache=True,
                                **{cache_arg: getattr(out, cache_arg)})
                    keep(s, [nxt], np.array([DECODE], np.uint8))
                    bar.update(1)
    finally:
        capture.close()
        bar.close()

    cat = {f: np.concatenate(v) for f, v in rows.items()}
    info = _provenance(model, model_id, revision, dev, k, E, prompt_source, generate, prompt_tokens)
    extra = dict(meta or {})
    info.update(extra, caveats=info["caveats"] + list(extra.get("caveats", [])))  # add, never drop
    trace = Trace(cat["ids"], num_experts=E, phase=cat["phase"], sequence=cat["seq"],
                  weights=cat["weights"], token_ids=cat["tok"],
                  stale_gate=cat["ahead"] if stale_gate else None, meta=info)
    if path is not None:
        trace.save(path)
    return trace


def _provenance(model, model_id, revision, device, k, E, prompt_source, generate, prompt_tokens):
    import torch
    import transformers

    cfg = model.config
    return {
        "model": model_id or getattr(cfg, "_name_or_path", "") or type(model).__name__,
        "model_revision": revision or getattr(cfg, "_commit_hash", None),
        "architecture": type(model).__name__,
        "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
        "device": str(device),
        "num_experts": E,
        "top_k": k,
        "prompt_source": prompt_source,
        "prompt_tokens": prompt_tokens,
        "generated_tokens_per_sequence": generate,
        "recorded_with": f"stmoe {__version__} (stmoe.record), transformers "
                         f"{transformers.__version__}, torch {torch.__version__}",
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "stale_gate_definition": STALE_GATE_DEFINITION,
        "weights_definition": "the gate weights the model applies to each picked expert, "
                              "in rank order (largest first)",
        "model_config": _model_config(cfg),
        "synthetic": False,
        "caveats": (["decode-phase tokens are teacher-forced (one causal forward pass), which "
                     "routes them as step-by-step decoding would, up to float rounding"]
                    if prompt_tokens is not None else []),
    }


def _model_config(cfg) -> dict:
    """The sizes `stmoe.sim.hardware.model_dims` needs to time this model (None where the config
    does not say): hidden size, one expert's FFN size, attention heads, vocabulary (the LM head)."""
    def first(*names):
        return next((int(v) for v in (getattr(cfg, n, None) for n in names) if isinstance(v, int)), None)
    return {"hidden": first("hidden_size"), "ffn": first("moe_intermediate_size", "intermediate_size"),
            "heads": first("num_attention_heads"), "kv_heads": first("num_key_value_heads"),
            "head_dim": first("head_dim", "v_head_dim"), "vocab": first("vocab_size")}
