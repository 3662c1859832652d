"""A colour head at a quarter of the photo's size (Zhang et al.'s choice) against the paper's half: the same
layers and weights, the last two at a quarter of the cost; every engine and the trainer handle both."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from chromalift.model.network import ColorizationNet, ModelConfig

QUARTER = ModelConfig(num_classes=3, width=0.125, global_size=32, ab_bins=6, head_scale=4)


def test_a_quarter_head_predicts_at_a_quarter_with_the_same_weights():
    torch.manual_seed(0)
    half = ColorizationNet(replace(QUARTER, head_scale=2)).eval()
    quarter = ColorizationNet(QUARTER).eval()
    quarter.load_state_dict(half.state_dict())                       # the same layers, the same shapes
    l = torch.rand(2, 1, 32, 32) - 0.5
    assert half(l)[0].shape[-2:] == (16, 16) and quarter(l)[0].shape[-2:] == (8, 8)
    prior = torch.rand(2, quarter.fusion.linear[0].in_channels // 2)
    wide = torch.rand(2, 1, 64, 96) - 0.5
    assert half.local_ab(wide, prior).shape[-2:] == (32, 48) and quarter.local_ab(wide, prior).shape[-2:] == (16, 24)


def test_every_engine_agrees_on_a_quarter_head(tmp_path):
    from chromalift.inference.colorizer import Colorizer
    from chromalift.inference.numpy_engine import NumpyColorizer
    from chromalift.model.weights import save_weights
    torch.manual_seed(1)
    model = ColorizationNet(QUARTER).eval()
    path = tmp_path / "q.safetensors"
    save_weights(path, model, classes=["a", "b", "c"])
    rgb = np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    torch_out = Colorizer.load(path, device="cpu").colorize(rgb)
    numpy_out = NumpyColorizer.load(path).colorize(rgb)
    assert torch_out.shape == (50, 70, 3) and np.abs(torch_out.astype(int) - numpy_out).max() <= 1


def test_the_trainer_trains_a_quarter_head_from_half_head_weights(tmp_path, tiny_weights):
    import json

    from helpers import make_photo_folder

    from chromalift.cli.main import main
    from chromalift.model.weights import load_weights
    src = make_photo_folder(tmp_path / "photos", per_class=4)
    out = tmp_path / "run"
    assert main(["train", "--data", str(src), "--out", str(out), "--width", "0.125", "--crop", "32",
                 "--batch-size", "4", "--steps", "2", "--loss", "classify", "--ab-bins", "6", "--ab-soft", "5",
                 "--head-scale", "4", "--prepare-size", "40", "--no-progress", "--device", "cpu",
                 "--init", str(tiny_weights), "--val", str(src)]) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["color_loss"]) for r in log if "color_loss" in r)
    assert any(np.isfinite(r.get("val_psnr", np.nan)) for r in log), "validated at the end"
    assert main(["weights", str(out / "last.pt"), str(tmp_path / "q.safetensors")]) == 0
    assert load_weights(tmp_path / "q.safetensors")[0].config.head_scale == 4
