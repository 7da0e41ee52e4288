"""A tiny randomly initialised Hugging Face MoE model, built from a transformers config, to try
the recorder and the whole pipeline offline (no download).

Its weights are random, so its router has learned nothing: a trace recorded from it shows how
the tools work, not the temporal and cross-layer structure of a trained model's routing.
Record a real model (e.g. ``stmoe record allenai/OLMoE-1B-7B-0924 ...``) for that.
"""

from __future__ import annotations

import numpy as np

from stmoe.errors import ConfigError
from stmoe.recording.recorder import find_routers

RANDOM_MODEL_CAVEAT = ("randomly initialised model: its routing has no learned structure, "
                       "only the shape of a real model's trace")

# transformers model class, config class and each architecture's own names for the MoE sizes
ARCHITECTURES = {
    "qwen3_moe": ("Qwen3MoeForCausalLM", "Qwen3MoeConfig", "num_experts", "moe_intermediate_size"),
    "mixtral": ("MixtralForCausalLM", "MixtralConfig", "num_local_experts", "intermediate_size"),
    "olmoe": ("OlmoeForCausalLM", "OlmoeConfig", "num_experts", "intermediate_size"),
}


def random_moe(arch: str = "qwen3_moe", *, layers: int = 4, experts: int = 16, top_k: int = 4,
               hidden: int = 64, ffn: int = 32, heads: int = 4, vocab: int = 256, seed: int = 0):
    """A transformers MoE causal LM with random weights (router weights drawn from N(0, 1), so
    the top-k is well defined; some architectures start their routers at zero)."""
    import torch
    import transformers

    if arch not in ARCHITECTURES:
        raise ConfigError(f"arch: unknown architecture {arch!r}; valid: {', '.join(ARCHITECTURES)}")
    sizes = dict(layers=layers, experts=experts, top_k=top_k, hidden=hidden, ffn=ffn, heads=heads, vocab=vocab)
    for name, v in sizes.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{name}: must be a positive integer, got {v!r}")
    if top_k > experts:
        raise ConfigError(f"top_k: {top_k} is more than experts={experts}")
    if hidden % heads:
        raise ConfigError(f"hidden: {hidden} is not a multiple of heads={heads}")
    model_name, config_name, experts_field, ffn_field = ARCHITECTURES[arch]
    config = getattr(transformers, config_name)(
        vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        num_key_value_heads=heads, head_dim=hidden // heads, max_position_embeddings=1024,
        num_experts_per_tok=top_k, bos_token_id=None, eos_token_id=None, pad_token_id=None,
        **{experts_field: experts, ffn_field: ffn})
    torch.manual_seed(seed)
    return spread_routers(getattr(transformers, model_name)(config).eval())


def spread_routers(model):
    """Draw every router's weights from N(0, 1) (with torch's current seed): some architectures
    start their routers at zero, where all experts tie and rank order is undefined."""
    import torch


    with torch.no_grad():
        for router in find_routers(model):
            router.weight.normal_(0.0, 1.0)
    return model


def random_token_sequences(count: int, length: int, vocab: int, seed: int = 0) -> list[list[int]]:
    """`count` sequences of `length` token ids drawn uniformly from [0, vocab), seeded."""
    for name, v in (("count", count), ("length", length), ("vocab", vocab)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{name}: must be a positive integer, got {v!r}")
    rng = np.random.default_rng(seed)
    return rng.integers(0, vocab, size=(count, length)).tolist()
