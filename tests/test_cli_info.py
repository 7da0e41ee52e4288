"""`stmoe info`: the training record's figures are printed and serialised rounded alike."""

import json

from stmoe import synthetic_trace
from stmoe.cli import main


def test_training_figures_are_rounded_where_info_shows_them(tmp_path, capsys):
    tr = synthetic_trace(64, 3, 8, 2, num_sequences=2, prompt_tokens=8, seed=0)
    tr.meta["training"] = {"steps": 1500, "tokens_seen": 6144000, "final_loss_last50": 3.2372300000000003,
                           "final_heldout_loss": {"code": 4.23573911190033}, "heldout_loss": 4.23573911190033,
                           "train_curve": [3.2372300000000003]}
    path = tr.save(tmp_path / "t.npz")
    assert main(["info", str(path), "--json"]) == 0
    training = json.loads(capsys.readouterr().out)["training"]
    assert training == {"steps": 1500, "tokens_seen": 6144000, "final_loss_last50": 3.2372,
                        "final_heldout_loss": {"code": 4.2357}, "heldout_loss": 4.2357}
    assert main(["info", str(path)]) == 0
    assert "1500 steps, 6,144,000 tokens, final training loss 3.24, held-out loss 4.24 nats/token" in \
        capsys.readouterr().out
