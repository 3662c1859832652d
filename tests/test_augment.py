"""Zoom augmentation: boxes inside the photo and as large as asked, resampling that is a plain enlargement,
and both batch paths (data-loading processes and device-resident) deterministic under it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import make_photo_folder

from chromalift.train.checkpoint import load_checkpoint
from chromalift.train.data.augment import draw_boxes, sample_boxes
from chromalift.train.data.batches import TrainBatches
from chromalift.train.data.cache import prepare
from chromalift.train.data.device_batches import DeviceBatches
from chromalift.train.loop import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoom")
    return prepare(make_photo_folder(root / "photos", per_class=6), root / "cache", size=40, progress=False, workers=1)


@pytest.mark.parametrize("photo, crop", [(40, 40), (40, 32)])
def test_boxes_stay_inside_the_photo_and_enlarge_up_to_the_zoom(photo, crop):
    zoom = 2.0
    cy, cx, h, w = draw_boxes(5000, photo=photo, crop=crop, zoom=zoom, generator=torch.Generator().manual_seed(0)).T
    assert float((cy.abs() + h).max()) <= 1 + 1e-6 and float((cx.abs() + w).max()) <= 1 + 1e-6
    full = (crop / photo) ** 2                                   # the crop's area, as a fraction of the photo's
    area = h * w
    assert float(area.max()) <= full + 1e-6
    assert float(area.min()) >= 0.86 * full / zoom ** 2          # aspect clamping trims at most 1 - sqrt(3)/2
    assert float(area.min()) < 0.3 * full and float(area.max()) > 0.9 * full    # the whole range is drawn
    assert float((h / w).min()) > 0.7 and float((h / w).max()) < 1.4
    with pytest.raises(ValueError, match="below 1"):
        draw_boxes(1, photo=40, crop=40, zoom=0.5, generator=torch.Generator())


def test_the_whole_box_is_the_photo_and_a_flip_mirrors_it():
    photos = torch.rand(2, 3, 16, 16)
    whole = torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 2)
    out = sample_boxes(photos, whole, torch.tensor([False, True]), 16)
    assert torch.allclose(out[0], photos[0], atol=1e-5)
    assert torch.allclose(out[1], photos[1].flip(-1), atol=1e-5)


def test_a_half_box_is_its_region_enlarged_twice():
    photo = torch.rand(1, 3, 64, 64)
    out = sample_boxes(photo, torch.tensor([[0.0, 0.0, 0.5, 0.5]]), torch.tensor([False]), 64)
    enlarged = F.interpolate(photo[..., 16:48, 16:48], scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(out[..., 2:-2, 2:-2], enlarged[..., 2:-2, 2:-2], atol=1e-5)   # edges read past the box


def test_zoomed_loader_batches_are_deterministic_and_evaluation_is_never_zoomed(cache):
    order = list(range(8))

    def batch(zoom, train=True):
        return TrainBatches(cache, order, 8, crop=32, flip=True, seed=3, epoch=1, zoom=zoom, train=train)[0]

    l, ab, labels = batch(2.0)
    assert l.shape == (8, 1, 32, 32) and ab.shape == (8, 2, 16, 16) and labels.tolist() == cache.labels[order].tolist()
    assert float(l.min()) >= -0.5 and float(l.max()) <= 0.5 and float(ab.abs().max()) < 128
    assert torch.equal(batch(2.0)[0], l) and torch.equal(batch(2.0)[1], ab)
    assert not torch.allclose(batch(1.0)[0], l)
    assert torch.equal(batch(2.0, train=False)[0], batch(1.0, train=False)[0])


def test_zoomed_device_batches_are_deterministic(cache):
    def first(zoom):
        return next(DeviceBatches(cache, torch.device("cpu"), crop=32, flip=True, seed=0, zoom=zoom).epoch(
            list(range(8)), 4, epoch=2))

    l, ab, _ = first(2.0)
    assert l.shape == (4, 1, 32, 32) and ab.shape == (4, 2, 16, 16)
    assert float(l.min()) >= -0.5 and float(l.max()) <= 0.5 and float(ab.abs().max()) < 128
    assert torch.equal(first(2.0)[0], l) and not torch.allclose(first(1.0)[0], l)


@pytest.mark.slow
def test_training_with_zoom_records_it_and_a_zoom_below_one_is_one_line(cache, tmp_path):
    cfg = TrainConfig(data=str(cache.root), out=str(tmp_path / "run"), width=0.125, crop=32, batch_size=8, steps=2,
                      zoom=1.5, workers=0, threads=1, progress=False, log_every=1, eval_every=100)
    train(cfg)
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state["step"] == 2 and state["args"]["zoom"] == 1.5
    r = subprocess.run([sys.executable, "-m", "chromalift", "train", "--data", str(cache.root), "--out",
                        str(tmp_path / "bad"), "--crop", "32", "--zoom", "0.5"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0 and "--zoom 0.5" in r.stderr and "Traceback" not in r.stderr


def test_a_zoomed_run_resumes_to_the_same_weights(cache, tmp_path):
    base = {"data": str(cache.root), "width": 0.125, "crop": 32, "batch_size": 4, "zoom": 2.0, "workers": 0,
            "threads": 1, "progress": False, "optimizer": "adam", "lr": 1e-3, "ckpt_every": 1, "log_every": 1,
            "eval_every": 100}
    train(TrainConfig(out=str(tmp_path / "a"), steps=6, **base))           # 2 epochs of 3 batches
    train(TrainConfig(out=str(tmp_path / "b"), steps=4, **base))
    train(TrainConfig(out=str(tmp_path / "b"), steps=6, resume=True, **base))
    a, b = (load_checkpoint(tmp_path / r / "last.pt")["model"] for r in "ab")
    assert max(float((a[k].float() - b[k].float()).abs().max()) for k in a) < 1e-6
