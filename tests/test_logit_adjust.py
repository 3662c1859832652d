"""Taking back --rebalance at inference (`colorize weights --ab-logit-adjust`): the mean loss weight of each
head bin from the training photos, and a head whose bias divides each bin's probability by it."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import make_photo_folder

from chromalift.checkpoint import HEAD, load_weights, logit_adjusted, save_checkpoint
from chromalift.color import rgb_to_lab
from chromalift.data import ab_bin_index, load_cache, prepare, rebalance_weights
from chromalift.losses import ab_bin_targets, head_bin_lookup, head_bin_weights
from chromalift.model import ColorizationNet, ModelConfig

BINS = ModelConfig(num_classes=2, width=0.125, global_size=32, ab_bins=8)
KEEP = (9, 10, 17, 18, 27, 36, 45, 54)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("adjust")
    return prepare(make_photo_folder(root / "photos"), root / "train", size=40, progress=False, workers=1).root


def _bin_probabilities(model: ColorizationNet, l: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        prior, _ = model.global_prior(l[..., :32, :32])
        x = model.colorization(model.fusion(model.mid(model.low(l)), prior))
    return torch.softmax(x.double(), dim=1)


def test_the_adjusted_head_divides_each_bins_probability_by_its_weight_to_the_power_beta():
    torch.manual_seed(0)
    model = ColorizationNet(replace(BINS, ab_keep=KEEP)).eval()
    weights = torch.rand(len(KEEP)) * 4 + 0.2
    l = torch.rand(1, 1, 32, 48) - 0.5
    p = _bin_probabilities(model, l)
    for beta in (0.0, 0.5, 1.0):
        got = _bin_probabilities(logit_adjusted(model, weights, beta), l)
        want = p / weights.double()[None, :, None, None] ** beta
        assert torch.allclose(got, want / want.sum(1, keepdim=True), atol=1e-6)
    assert torch.equal(logit_adjusted(model, weights, 0.0).state_dict()[HEAD + ".bias"],
                       model.state_dict()[HEAD + ".bias"])
    with pytest.raises(ValueError, match="regress"):
        logit_adjusted(ColorizationNet(replace(BINS, ab_bins=0)), weights, 1.0)
    with pytest.raises(ValueError, match="choose 0"):
        logit_adjusted(model, weights, 1.5)
    with pytest.raises(ValueError, match="bin weights"):
        logit_adjusted(model, weights[:3], 1.0)


def test_a_head_bins_weight_is_the_mean_loss_weight_of_the_pixels_that_target_it():
    red, grey = np.array([220, 30, 30], np.uint8), np.array([128, 128, 128], np.uint8)
    photos = np.stack([np.broadcast_to(red, (6, 6, 3)), np.broadcast_to(grey, (6, 6, 3))])
    ab = rgb_to_lab(torch.from_numpy(np.stack([red, grey])[:, :, None, None]).float() / 255.0)[:, 1:]
    hist = np.zeros((32, 32))
    hist.flat[ab_bin_index(ab).flatten().numpy()] = [1, 9]     # grey common, red rare
    pixel_weight = rebalance_weights(hist, 0.5)[ab_bin_index(ab).flatten()]
    assert pixel_weight[0] > 1 > pixel_weight[1]
    full = head_bin_weights(photos, hist, 0.5, 8)
    red_bin, grey_bin = ab_bin_targets(ab, 8).flatten().tolist()
    assert torch.allclose(full[[red_bin, grey_bin]], pixel_weight)
    others = [b for b in range(64) if b not in (red_bin, grey_bin)]
    assert torch.equal(full[others], torch.ones(len(others)))        # no pixel: left alone
    keep = (red_bin, grey_bin) if red_bin < grey_bin else (grey_bin, red_bin)
    cut = head_bin_weights(photos, hist, 0.5, 8, keep + (63,))        # a cut head: by its outputs
    lookup = head_bin_lookup(8, keep + (63,))
    assert torch.allclose(cut[[int(lookup[red_bin]), int(lookup[grey_bin])]], pixel_weight) and cut[2] == 1


def test_weights_cli_takes_back_the_rebalancing_the_checkpoint_records(cache, tmp_path, capsys):
    from chromalift.cli import main
    classes = load_cache(cache).classes
    torch.manual_seed(1)
    model = ColorizationNet(replace(BINS, num_classes=len(classes)))
    for name, args in (("rebalanced", {"rebalance": 0.5, "data": str(cache)}), ("plain", {"rebalance": 0.0})):
        save_checkpoint(tmp_path / f"{name}.pt", {"model_config": model.config.to_dict(), "model": model.state_dict(),
                        "step": 3, "classes": classes, "args": args})
    out = tmp_path / "adjusted.safetensors"
    assert main(["weights", str(tmp_path / "rebalanced.pt"), str(out), "--ab-logit-adjust", "1"]) == 0
    adjusted, _, info = load_weights(out)
    assert info["ab_logit_adjust"] == 1.0 and info["train_args"]["rebalance"] == 0.5
    cached = load_cache(cache)
    weights = head_bin_weights(cached.images, cached.ab_hist, 0.5, 8)
    shift = model.state_dict()[HEAD + ".bias"] - adjusted.state_dict()[HEAD + ".bias"]
    assert torch.allclose(shift, weights.log(), atol=1e-5) and (weights != 1).any()
    capsys.readouterr()
    for source, extra, said in ((out, [], "already"), (tmp_path / "plain.pt", [], "not trained so"),
                                (tmp_path / "rebalanced.pt", ["--rebalance-data", str(tmp_path / "gone")], "gone"),
                                (tmp_path / "rebalanced.pt", ["--ab-logit-adjust", "2"], "choose 0")):
        target = tmp_path / "again.safetensors"
        assert main(["weights", str(source), str(target), "--ab-logit-adjust", "0.5", *extra]) == 1
        err = capsys.readouterr().err
        assert said in err and len(err.strip().splitlines()) == 1 and not target.exists()
