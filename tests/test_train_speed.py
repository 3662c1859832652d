"""Speed changes to the trainer that must not change what it learns: the soft targets from the cell
candidates, and batches made in the training process by default on a CPU."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import make_photo_folder
from test_soft_bins import _every_bin_soft_cross_entropy

from chromalift.train import losses
from chromalift.train.data.cache import prepare
from chromalift.train.data.loader import loader_workers
from chromalift.train.loop import TrainConfig, train


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("speed")
    return prepare(make_photo_folder(root / "photos"), root / "train", size=40, progress=False, workers=1).root


def _losses(cache: Path, out: Path, **kw) -> list[float]:
    train(TrainConfig(data=str(cache), out=str(out), width=0.125, crop=32, batch_size=8, steps=6, log_every=1,
                      ckpt_every=100, threads=1, progress=False, optimizer="adam", lr=1e-3, zoom=2.0, seed=3, **kw))
    return [r["loss"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "loss" in r]


def test_the_soft_targets_train_as_measuring_every_bin_did(cache, tmp_path, monkeypatch):
    recipe = {"loss": "classify", "ab_bins": 8, "ab_prune": True, "ab_soft": 5.0, "workers": 0, "amp": False}
    fast = _losses(cache, tmp_path / "fast", **recipe)
    monkeypatch.setattr(losses, "ab_bin_soft_cross_entropy",
                        lambda logits, ab, soft: _every_bin_soft_cross_entropy(logits, ab, soft.points[:-1], soft.sigma).float())
    plain = _losses(cache, tmp_path / "plain", **recipe)
    assert len(fast) == 6 and fast == pytest.approx(plain, rel=1e-4, abs=1e-5)


def test_batches_made_in_the_trainer_train_as_a_loader_process_did(cache, tmp_path):
    assert _losses(cache, tmp_path / "in", workers=None) == pytest.approx(_losses(cache, tmp_path / "loader", workers=1),
                                                                            rel=1e-5, abs=1e-6)


def test_no_loader_process_on_a_cpu_by_default():
    cfg = TrainConfig(data="d", out="o")
    assert loader_workers(cfg, torch.device("cpu")) == 0 and loader_workers(cfg, torch.device("cuda", 0)) == 1
    assert loader_workers(TrainConfig(data="d", out="o", workers=3), torch.device("cpu")) == 3


