"""The toy model for notebook 07: a random transformers MoE that the recorder records offline,
whose trace carries the sizes `model_dims` needs and the caveat that its routing is random."""

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import stmoe  # noqa: E402
from stmoe.errors import ConfigError  # noqa: E402
from stmoe.sim.hardware import model_dims  # noqa: E402
from stmoe.recording.toy_model import ARCHITECTURES, RANDOM_MODEL_CAVEAT, random_moe, random_token_sequences  # noqa: E402


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_recorded_trace_has_the_configured_shape_and_sizes(arch):
    model = random_moe(arch, layers=3, experts=8, top_k=2, hidden=32, ffn=16, heads=2, vocab=64, seed=1)
    seqs = random_token_sequences(2, 12, 64, seed=2)
    trace = stmoe.record(model, seqs, prompt_tokens=4, progress=False,
                         meta={"caveats": [RANDOM_MODEL_CAVEAT]})
    assert (trace.num_layers, trace.num_experts, trace.top_k, trace.num_tokens) == (3, 8, 2, 24)
    assert RANDOM_MODEL_CAVEAT in trace.meta["caveats"]
    assert any("teacher-forced" in c for c in trace.meta["caveats"]), "meta caveats must add, not replace"
    assert trace.meta["model_config"]["hidden"] == 32 and trace.meta["model_config"]["ffn"] == 16
    dims = model_dims(trace)          # no arguments: the recorder stored the sizes
    assert dims.expert_bytes[0] == 3 * 32 * 16 * 4      # SwiGLU, float32


def test_seeded_and_deterministic():
    assert random_token_sequences(3, 5, 50, seed=4) == random_token_sequences(3, 5, 50, seed=4)
    assert random_token_sequences(3, 5, 50, seed=4) != random_token_sequences(3, 5, 50, seed=5)
    seqs = np.array(random_token_sequences(3, 5, 50, seed=4))
    assert seqs.shape == (3, 5) and seqs.min() >= 0 and seqs.max() < 50
    a = stmoe.record(random_moe(layers=2, experts=8, top_k=2, hidden=32, heads=2, seed=3), [[1, 2, 3]], progress=False)
    b = stmoe.record(random_moe(layers=2, experts=8, top_k=2, hidden=32, heads=2, seed=3), [[1, 2, 3]], progress=False)
    np.testing.assert_array_equal(a.expert_ids, b.expert_ids)


@pytest.mark.parametrize("kwargs, match", [
    ({"arch": "llama"}, "arch"), ({"top_k": 20}, "top_k"), ({"hidden": 30}, "hidden"), ({"layers": 0}, "layers"),
])
def test_bad_settings_name_the_parameter(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        random_moe(**kwargs)
    with pytest.raises(ConfigError, match="count"):
        random_token_sequences(0, 5, 10)
