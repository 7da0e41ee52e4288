"""The MoE models stmoe knows the sizes of, each from its public Hugging Face ``config.json``.

`MODELS` maps a lower-case registry name (like the trace names, ``qwen3-30b-a3b``) to a
`ModelConfig`; `find_model` also accepts the Hugging Face id and a recorder's model path
(``.../Qwen3-30B-A3B-Q4_K_M.gguf``). `stmoe.sim.hardware.model_dims` turns a config into the bytes
and multiply-accumulates of one decoded token.

Every entry names the ``config.json`` it was read from and the fields used; values cross-checked
in this change against a second public copy (a Megatron/slime or MaxText model script, a
transformers module printout) say so in ``checked``; the others are as the cited config reads,
not re-checked here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from stmoe.errors import ConfigError

HF = "https://huggingface.co/{}/blob/main/config.json"


@dataclass(frozen=True)
class ModelConfig:
    """One MoE model's shape. Sizes are element counts; layers counts every decoder layer,
    `dense_layers` of them (the first ones) with a dense FFN of `dense_ffn` instead of experts.
    MLA models (DeepSeek) set `kv_lora_rank` (and `q_lora_rank` where the query is compressed);
    their `head_dim` is the query/key head (no-RoPE + RoPE part), `v_head_dim` the value head."""

    name: str
    hf_id: str
    hidden: int
    ffn: int                     # one routed expert's FFN size (moe_intermediate_size)
    experts: int
    k: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied_embeddings: bool
    source: str
    dense_layers: int = 0
    dense_ffn: int = 0
    shared_experts: int = 0
    shared_ffn: int = 0
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    rope_head_dim: int = 0
    v_head_dim: int = 0
    checked: str = ""

    @property
    def moe_layers(self) -> int:
        return self.layers - self.dense_layers

    def attention_matrices(self) -> tuple[tuple[int, int], ...]:
        """(K, N) of each weight matrix one token goes through in one layer's attention: the q,
        k, v and o projections, or MLA's low-rank ones."""
        h, nh = self.hidden, self.heads
        if self.kv_lora_rank:   # DeepSeek-V2 paper (Multi-head Latent Attention), section 2.1
            q = (((h, self.q_lora_rank), (self.q_lora_rank, nh * self.head_dim)) if self.q_lora_rank
                 else ((h, nh * self.head_dim),))
            kv = ((h, self.kv_lora_rank + self.rope_head_dim),
                  (self.kv_lora_rank, nh * (self.head_dim - self.rope_head_dim + self.v_head_dim)))
            return (*q, *kv, (nh * self.v_head_dim, h))
        return ((h, nh * self.head_dim), (h, self.kv_heads * self.head_dim), (h, self.kv_heads * self.head_dim),
                (nh * self.head_dim, h))

    def attention_params(self) -> int:
        """Weights of one layer's attention (q, k, v, o projections; MLA's low-rank ones)."""
        return sum(k * n for k, n in self.attention_matrices())

    def kv_elements_per_token(self) -> int:
        """Elements one layer's KV cache holds per context token (MLA caches the latent + RoPE key)."""
        if self.kv_lora_rank:
            return self.kv_lora_rank + self.rope_head_dim
        return 2 * self.kv_heads * self.head_dim

    def kv_macs_per_token(self) -> int:
        """Multiply-accumulates per context token of one layer's attention for one new token
        (scores q.k and the weighted sum of values; MLA with its up-projections absorbed)."""
        if self.kv_lora_rank:
            return self.heads * (2 * self.kv_lora_rank + self.rope_head_dim)
        return 2 * self.heads * self.head_dim


def _qwen3(name, hf_id, **kw):
    return ModelConfig(name, hf_id, vocab=151936, tied_embeddings=False, head_dim=128, kv_heads=4,
                       experts=128, k=8, **kw)


_ENTRIES = [
    _qwen3("qwen3-30b-a3b", "Qwen/Qwen3-30B-A3B", hidden=2048, ffn=768, layers=48, heads=32,
           source=HF.format("Qwen/Qwen3-30B-A3B") + ": hidden_size, moe_intermediate_size, num_experts, "
           "num_experts_per_tok, num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim, "
           "vocab_size, tie_word_embeddings",
           checked="against THUDM/slime scripts/models/qwen3-30B-A3B.sh"),
    _qwen3("qwen3-235b-a22b", "Qwen/Qwen3-235B-A22B", hidden=4096, ffn=1536, layers=94, heads=64,
           source=HF.format("Qwen/Qwen3-235B-A22B") + ": the same fields as qwen3-30b-a3b",
           checked="against THUDM/slime scripts/models/qwen3-235B-A22B.sh"),
    ModelConfig("qwen1.5-moe-a2.7b", "Qwen/Qwen1.5-MoE-A2.7B", hidden=2048, ffn=1408, experts=60, k=4,
                layers=24, heads=16, kv_heads=16, head_dim=128, vocab=151936, tied_embeddings=False,
                shared_experts=1, shared_ffn=5632,
                source=HF.format("Qwen/Qwen1.5-MoE-A2.7B") + " (model_type qwen2_moe, the A2.7B model of the "
                "Qwen2-MoE architecture): hidden_size, moe_intermediate_size, shared_expert_intermediate_size, "
                "num_experts, num_experts_per_tok, num_hidden_layers, num_attention_heads, num_key_value_heads, "
                "vocab_size, tie_word_embeddings",
                checked="against the config.json of Qwen/Qwen1.5-MoE-A2.7B-Chat-GPTQ-Int4 as printed in a "
                        "public copy; vocab and tie_word_embeddings not re-checked"),
    ModelConfig("qwen2-57b-a14b", "Qwen/Qwen2-57B-A14B", hidden=3584, ffn=2560, experts=64, k=8,
                layers=28, heads=28, kv_heads=4, head_dim=128, vocab=151936, tied_embeddings=False,
                shared_experts=1, shared_ffn=20480,
                source=HF.format("Qwen/Qwen2-57B-A14B") + ": the same fields as qwen1.5-moe-a2.7b",
                checked="not re-checked here"),
    ModelConfig("mixtral-8x7b", "mistralai/Mixtral-8x7B-v0.1", hidden=4096, ffn=14336, experts=8, k=2,
                layers=32, heads=32, kv_heads=8, head_dim=128, vocab=32000, tied_embeddings=False,
                source=HF.format("mistralai/Mixtral-8x7B-v0.1") + ": hidden_size, intermediate_size, "
                "num_local_experts, num_experts_per_tok, num_hidden_layers, num_attention_heads, "
                "num_key_value_heads, head_dim, vocab_size, tie_word_embeddings",
                checked="against a printed MixtralConfig of mistralai/Mixtral-8x7B-Instruct-v0.1 and keras-hub's "
                        "Mixtral module printout"),
    ModelConfig("mixtral-8x22b", "mistralai/Mixtral-8x22B-v0.1", hidden=6144, ffn=16384, experts=8, k=2,
                layers=56, heads=48, kv_heads=8, head_dim=128, vocab=32000, tied_embeddings=False,
                source=HF.format("mistral-community/Mixtral-8x22B-v0.1") + ": the same fields as mixtral-8x7b",
                checked="vocab 32000 as in a Cerebras config based on mistral-community/Mixtral-8x22B-v0.1; "
                        "the Instruct model's tokenizer has 32768 (not re-checked); other fields not re-checked"),
    ModelConfig("olmoe-1b-7b", "allenai/OLMoE-1B-7B-0924", hidden=2048, ffn=1024, experts=64, k=8,
                layers=16, heads=16, kv_heads=16, head_dim=128, vocab=50304, tied_embeddings=False,
                source=HF.format("allenai/OLMoE-1B-7B-0924") + ": hidden_size, intermediate_size, num_experts, "
                "num_experts_per_tok, num_hidden_layers, num_attention_heads, num_key_value_heads, "
                "vocab_size, tie_word_embeddings",
                checked="64 experts, top-8, 16 layers against public descriptions; the rest not re-checked"),
    ModelConfig("deepseek-v2-lite", "deepseek-ai/DeepSeek-V2-Lite", hidden=2048, ffn=1408, experts=64, k=6,
                layers=27, heads=16, kv_heads=16, head_dim=192, vocab=102400, tied_embeddings=False,
                dense_layers=1, dense_ffn=10944, shared_experts=2, shared_ffn=1408,
                kv_lora_rank=512, q_lora_rank=0, rope_head_dim=64, v_head_dim=128,
                source=HF.format("deepseek-ai/DeepSeek-V2-Lite") + ": hidden_size, moe_intermediate_size, "
                "n_routed_experts, num_experts_per_tok, num_hidden_layers, first_k_dense_replace, "
                "intermediate_size, n_shared_experts, num_attention_heads, kv_lora_rank, q_lora_rank (null), "
                "qk_nope_head_dim + qk_rope_head_dim, v_head_dim, vocab_size, tie_word_embeddings",
                checked="against Megatron-style model scripts (27 layers, hidden 2048, dense FFN 10944, "
                        "MLA 512/64/128, 64 experts of 1408, 2 shared)"),
    ModelConfig("deepseek-v3", "deepseek-ai/DeepSeek-V3", hidden=7168, ffn=2048, experts=256, k=8,
                layers=61, heads=128, kv_heads=128, head_dim=192, vocab=129280, tied_embeddings=False,
                dense_layers=3, dense_ffn=18432, shared_experts=1, shared_ffn=2048,
                kv_lora_rank=512, q_lora_rank=1536, rope_head_dim=64, v_head_dim=128,
                source=HF.format("deepseek-ai/DeepSeek-V3") + ": the same fields as deepseek-v2-lite",
                checked="against a public copy of the config (hidden 7168, 256 experts of 2048, top-8, 61 "
                        "layers, first 3 dense of 18432, q/kv lora 1536/512) and a Megatron-style script"),
    ModelConfig("gpt-oss-20b", "openai/gpt-oss-20b", hidden=2880, ffn=2880, experts=32, k=4, layers=24,
                heads=64, kv_heads=8, head_dim=64, vocab=201088, tied_embeddings=False,
                source=HF.format("openai/gpt-oss-20b") + ": hidden_size, intermediate_size, num_local_experts, "
                "num_experts_per_tok, num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim, "
                "vocab_size, tie_word_embeddings (experts ship in MXFP4: give --dtype int4 for ~4 bits)",
                checked="hidden 2880, 64 heads, 24 layers, 32 experts against public copies; half the layers "
                        "use a 128-token sliding window, which the KV-cache term ignores (it reads the whole "
                        "context in every layer)"),
    ModelConfig("gpt-oss-120b", "openai/gpt-oss-120b", hidden=2880, ffn=2880, experts=128, k=4, layers=36,
                heads=64, kv_heads=8, head_dim=64, vocab=201088, tied_embeddings=False,
                source=HF.format("openai/gpt-oss-120b") + ": the same fields as gpt-oss-20b",
                checked="against a public GptOssConfig copy (vocab 201088, intermediate 2880, 36 layers, 64/8 "
                        "heads, 128 experts, top-4); sliding-window layers as for gpt-oss-20b"),
    ModelConfig("granite-3.0-1b-a400m", "ibm-granite/granite-3.0-1b-a400m-instruct", hidden=1024, ffn=512,
                experts=32, k=8, layers=24, heads=16, kv_heads=8, head_dim=64, vocab=49155,
                tied_embeddings=True,
                source=HF.format("ibm-granite/granite-3.0-1b-a400m-instruct") + ": hidden_size, "
                "intermediate_size, num_local_experts, num_experts_per_tok, num_hidden_layers, "
                "num_attention_heads, num_key_value_heads, vocab_size, tie_word_embeddings",
                checked="against a public GraniteMoeForCausalLM printout (embedding 49155 x 1024, 24 layers, "
                        "k/v projections 512 wide)"),
    ModelConfig("granite-3.0-3b-a800m", "ibm-granite/granite-3.0-3b-a800m-instruct", hidden=1536, ffn=512,
                experts=40, k=8, layers=32, heads=24, kv_heads=8, head_dim=64, vocab=49155,
                tied_embeddings=True,
                source=HF.format("ibm-granite/granite-3.0-3b-a800m-instruct") + ": the same fields as "
                "granite-3.0-1b-a400m", checked="not re-checked here"),
    ModelConfig("stmoe-bundled-qwen3moe-8x32", "stmoe-bundled-qwen3moe-8x32", hidden=192, ffn=128,
                experts=32, k=4, layers=8, heads=6, kv_heads=2, head_dim=32, vocab=4096, tied_embeddings=True,
                source="scripts/bundled_model.json (the bundled traces' model, trained by "
                       "scripts/build_bundled_traces.py)", checked="read from the file"),
]

MODELS = {m.name: m for m in _ENTRIES}
_ALIASES = {"qwen2-moe-a2.7b": "qwen1.5-moe-a2.7b"}   # the name for the Qwen2-MoE A2.7B model


def find_model(name) -> ModelConfig | None:
    """The registry entry called `name`: a registry name, a Hugging Face id (any case) or a
    path whose file name starts with one (a recorder's ``.../Qwen3-30B-A3B-Q4_K_M.gguf``)."""
    if not name:
        return None
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key in MODELS:
        return MODELS[key]
    for m in _ENTRIES:
        if key == m.hf_id.lower() or key.split("/")[-1] == m.hf_id.lower().split("/")[-1]:
            return m
    stem = PurePosixPath(key).name
    for m in sorted(_ENTRIES, key=lambda m: -len(m.name)):   # longest first: 8x22b before 8x2...
        if stem.startswith((m.name, m.hf_id.lower().split("/")[-1])):
            return m
    return None


def get_model(name: str) -> ModelConfig:
    """`find_model`, or a ConfigError listing the registry."""
    m = find_model(name)
    if m is None:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(MODELS)} (or give --hidden/--ffn)")
    return m
