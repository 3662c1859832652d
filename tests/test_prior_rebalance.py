"""Class rebalancing at inference (`colorize weights --ab-rebalance S`): weights trained without --rebalance
get a head whose bin probabilities are multiplied by the loss weights --rebalance S would have given, the
Bayes-rule form of what training with it aims at; the CLI refuses what it cannot do in one line."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from helpers import make_photo_folder

from chromalift.model.network import ColorizationNet, ModelConfig
from chromalift.model.weights import HEAD, load_weights, rebalanced
from chromalift.train.checkpoint import save_checkpoint
from chromalift.train.data.cache import load_cache, prepare
from chromalift.train.losses import head_bin_weights

BINS = ModelConfig(num_classes=2, width=0.125, global_size=32, ab_bins=8)
KEEP = (9, 10, 17, 18, 27, 36, 45, 54)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("rebalance")
    return prepare(make_photo_folder(root / "photos"), root / "train", size=40, progress=False, workers=1).root


def _bin_probabilities(model: ColorizationNet, l: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        prior, _ = model.global_prior(l[..., :32, :32])
        x = model.colorization(model.fusion(model.mid(model.low(l)), prior))
    return torch.softmax(x.double(), dim=1)


def test_the_rebalanced_head_multiplies_each_bins_probability_by_its_weight():
    torch.manual_seed(0)
    model = ColorizationNet(replace(BINS, ab_keep=KEEP)).eval()
    weights = torch.rand(len(KEEP)) * 4 + 0.2
    l = torch.rand(1, 1, 32, 48) - 0.5
    want = _bin_probabilities(model, l) * weights.double()[None, :, None, None]
    got = _bin_probabilities(rebalanced(model, weights), l)
    assert torch.allclose(got, want / want.sum(1, keepdim=True), atol=1e-6)
    rare = int(weights.argmax())       # the most up-weighted bin gains probability everywhere
    assert (got[:, rare] > _bin_probabilities(model, l)[:, rare]).all()
    with pytest.raises(ValueError, match="regress"):
        rebalanced(ColorizationNet(replace(BINS, ab_bins=0)), weights)
    with pytest.raises(ValueError, match="bin weights"):
        rebalanced(model, weights[:3])


def _checkpoints(cache, tmp_path):
    classes = load_cache(cache).classes
    torch.manual_seed(1)
    model = ColorizationNet(replace(BINS, num_classes=len(classes)))
    for name, rebalance in (("plain", 0.0), ("rebalanced", 0.5)):
        save_checkpoint(tmp_path / f"{name}.pt", {"model_config": model.config.to_dict(), "model": model.state_dict(),
                        "step": 3, "classes": classes, "args": {"rebalance": rebalance, "data": str(cache)}})
    return model


def test_weights_cli_rebalances_plain_weights_from_their_training_photos(cache, tmp_path):
    from chromalift.cli.main import main
    model = _checkpoints(cache, tmp_path)
    out = tmp_path / "bold.safetensors"
    assert main(["weights", str(tmp_path / "plain.pt"), str(out), "--ab-rebalance", "0.25"]) == 0
    bold, _, info = load_weights(out)
    assert info["ab_rebalance"] == 0.25 and "ab_logit_adjust" not in info
    cached = load_cache(cache)
    weights = head_bin_weights(cached.images, cached.ab_hist, 0.25, 8)
    shift = bold.state_dict()[HEAD + ".bias"] - model.state_dict()[HEAD + ".bias"]
    assert torch.allclose(shift, weights.log(), atol=1e-5) and (weights != 1).any()


def test_weights_cli_refuses_what_it_cannot_rebalance_in_one_line(cache, tmp_path, capsys):
    from chromalift.cli.main import main
    _checkpoints(cache, tmp_path)
    done = tmp_path / "done.safetensors"
    assert main(["weights", str(tmp_path / "plain.pt"), str(done), "--ab-rebalance", "0.1"]) == 0
    capsys.readouterr()
    for source, extra, said in ((done, ["--ab-rebalance", "0.1"], "adjusted already"),
                                (tmp_path / "rebalanced.pt", ["--ab-rebalance", "0.1"], "--ab-logit-adjust"),
                                (tmp_path / "plain.pt", ["--ab-rebalance", "0"], "choose a strength"),
                                (tmp_path / "plain.pt", ["--ab-rebalance", "1.5"], "choose a strength"),
                                (tmp_path / "plain.pt", ["--ab-rebalance", "0.1", "--ab-logit-adjust", "1"],
                                 "choose one"),
                                (tmp_path / "plain.pt", ["--ab-rebalance", "0.1", "--rebalance-data",
                                                         str(tmp_path / "gone")], "gone")):
        target = tmp_path / "again.safetensors"
        assert main(["weights", str(source), str(target), *extra]) == 1
        err = capsys.readouterr().err
        assert said in err and len(err.strip().splitlines()) == 1 and not target.exists()
