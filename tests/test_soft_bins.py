"""Soft targets for the ab-bin loss (`train --ab-soft SIGMA`, Zhang et al.'s soft-encoding): each colour's
five nearest bins, weighted by a Gaussian of the distance; hard targets in the limit of a small sigma."""
from __future__ import annotations

import math

import pytest
import torch
from helpers import make_photo_folder

from chromalift.color.lab import unnormalize_ab
from chromalift.model.network import ModelConfig, ab_bin_centres
from chromalift.train.data.cache import prepare
from chromalift.train.loop import TrainConfig, train
from chromalift.train.losses import SoftBins, ab_bin_cross_entropy, ab_bin_soft_cross_entropy, ab_bin_targets

GRID = ModelConfig(num_classes=2, width=0.125, global_size=32, ab_bins=8)


def _centres(config: ModelConfig) -> torch.Tensor:
    return unnormalize_ab(ab_bin_centres(config)).T.contiguous()     # (Q, 2) in Lab units


def test_a_small_sigma_gives_the_hard_targets():
    torch.manual_seed(0)
    ab = torch.randn(2, 2, 6, 5) * 40
    logits = torch.randn(2, 64, 6, 5)
    hard = ab_bin_cross_entropy(logits, ab_bin_targets(ab, 8))
    soft = ab_bin_soft_cross_entropy(logits, ab, SoftBins(_centres(GRID), 1e-3))
    assert torch.allclose(soft, hard, atol=1e-4)


def test_a_colour_spreads_over_its_five_nearest_bins_by_distance():
    centres = _centres(ModelConfig(num_classes=2, width=0.125, global_size=32, ab_bins=22))   # the shipped grid
    q, mid = len(centres), 11 * 22 + 11
    colour = centres[mid] + torch.tensor([3.0, -2.0])      # off the centre of a bin 11.6 Lab units wide
    ab = colour.reshape(1, 2, 1, 1)
    d = (centres - colour).norm(dim=1)
    nearest = d.argsort()[:5]
    w = torch.softmax(-(d[nearest] ** 2) / (2 * 5.0 ** 2), dim=0)
    assert nearest[0] == mid and w[0] > w[1:].max() and w[1:].min() > 0.01      # spread, nearest first
    # the loss is the cross-entropy against those weights: lowest when the prediction is the target itself
    target_logits = torch.full((q,), -30.0)
    target_logits[nearest] = torch.log(w)
    one_hot = torch.full((q,), -30.0)
    one_hot[mid] = 0.0
    at_target = ab_bin_soft_cross_entropy(target_logits.reshape(1, q, 1, 1), ab, SoftBins(centres, 5.0)).item()
    at_bin = ab_bin_soft_cross_entropy(one_hot.reshape(1, q, 1, 1), ab, SoftBins(centres, 5.0)).item()
    entropy = -float((w * torch.log(w)).sum())
    assert at_target == pytest.approx(entropy, abs=1e-4) and at_bin > at_target + 1.0


def _every_bin_soft_cross_entropy(logits, ab, centres, sigma):
    """The plain form: each colour measured against every bin."""
    b, q, h, w = logits.shape
    d, nearest = torch.cdist(ab.permute(0, 2, 3, 1).reshape(-1, 2).double(), centres.double()).topk(5, largest=False)
    weights = torch.softmax(-d.square() / (2 * sigma * sigma), dim=1)
    log_p = torch.log_softmax(logits.permute(0, 2, 3, 1).reshape(-1, q).double(), dim=1)
    return -(log_p.gather(1, nearest) * weights).sum(1).view(b, 1, h, w)


@pytest.mark.parametrize("bins,keep", [(22, ()), (22, tuple(range(40, 400, 2))), (8, (3, 9, 20, 41, 50))])
def test_the_cell_candidates_give_the_same_targets_as_measuring_every_bin(bins, keep):
    """The candidate table is exact: any colour of the ab plane (sRGB's and beyond), any cut head."""
    torch.manual_seed(1)
    centres = _centres(ModelConfig(num_classes=2, width=0.125, global_size=32, ab_bins=bins, ab_keep=keep))
    ab = torch.cat([torch.rand(1, 2, 64, 64) * 240 - 120, torch.rand(1, 2, 64, 64) * 20 - 10])   # a grey-heavy batch too
    logits = torch.randn(2, len(centres), 64, 64)
    fast = ab_bin_soft_cross_entropy(logits, ab, SoftBins(centres, 5.0))
    assert torch.allclose(fast.double(), _every_bin_soft_cross_entropy(logits, ab, centres, 5.0), atol=1e-4)


def test_training_with_soft_targets_runs_and_is_refused_without_bins(tmp_path):
    cache = prepare(make_photo_folder(tmp_path / "photos"), tmp_path / "train", size=40, progress=False, workers=1).root
    base = {"data": str(cache), "width": 0.125, "crop": 32, "batch_size": 8, "steps": 2, "eval_every": 100,
            "workers": 0, "threads": 1, "progress": False, "optimizer": "adam", "lr": 1e-3}
    last = train(TrainConfig(out=str(tmp_path / "soft"), loss="classify", ab_bins=8, ab_prune=True, ab_soft=5.0,
                             val=str(cache), **base))
    assert math.isfinite(last["val_mse"])
    for i, bad in enumerate(({"loss": "mse", "ab_soft": 5.0}, {"loss": "classify", "ab_soft": -1.0})):
        with pytest.raises(ValueError, match="--ab-soft"):
            train(TrainConfig(out=str(tmp_path / f"bad{i}"), **base, **bad))
