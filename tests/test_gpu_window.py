"""The GPU-window kit on the CPU, end to end: photos -> pack -> the window script (2 steps) -> weight parts
-> reassembled weights -> `colorize --model`. Also: packs keep to their budget and their classes balanced,
batches made on the device resume exactly, and training imports nothing a bare GPU machine lacks."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import gradient_rgb
from PIL import Image

from chromalift.cli.main import main
from chromalift.train.data.pack import build_pack, load_pack

ROOT = Path(__file__).resolve().parents[1]


def photos(root: Path, classes=("beach", "forest", "sky"), per_class=6, size=48) -> Path:
    tints = {"beach": (1.0, 0.85, 0.5), "forest": (0.4, 0.9, 0.4), "sky": (0.5, 0.7, 1.0)}
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = np.clip(gradient_rgb(size, size, seed=i).astype(np.float32) * np.array(tints[c]), 0, 255)
            Image.fromarray(img.astype(np.uint8)).save(root / c / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def packs(tmp_path_factory):
    root = tmp_path_factory.mktemp("kit")
    src, val = photos(root / "train"), photos(root / "val", per_class=2)
    assert main(["pack", str(src), str(root / "mp.npz"), "--mib", "1", "--size", "40", "--val-from", str(val),
                 "--val-mib", "1"]) == 0
    return root / "mp.npz", root / "mp-val.npz"


def test_a_pack_keeps_to_its_budget_and_its_classes_balanced(tmp_path):
    src = photos(tmp_path / "p", per_class=10, size=64)
    full = build_pack(src, tmp_path / "full.npz", max_mib=1, size=64, progress=False, workers=1)
    assert full["count"] == 30 and full["ab_psnr_mean"] > 30       # what 4:2:0 JPEG costs the colour targets
    budget = 6 * full["bytes"] / 30 / 2**20 + 64 / 1024 + 16 * 30 / 2**20   # room for about 6 photos
    build_pack(src, tmp_path / "small.npz", max_mib=budget, size=64, progress=False, workers=1)
    assert (tmp_path / "small.npz").stat().st_size <= budget * 2**20
    cache = load_pack(tmp_path / "small.npz")
    assert 4 <= len(cache) < 30 and cache.images.shape[1:] == (64, 64, 3)
    counts = np.bincount(cache.labels, minlength=3)
    assert counts.max() - counts.min() <= 1                         # round-robin over the classes
    original = np.asarray(Image.open(src / "beach" / "00.png").convert("RGB"), dtype=np.float32)
    assert np.abs(cache.images[0].astype(np.float32) - original).mean() < 12     # JPEG q85 of a noisy test photo


def test_a_webp_pack_holds_more_photos_in_the_same_bytes_and_reports_what_it_costs(tmp_path):
    src = photos(tmp_path / "p", per_class=10, size=64)
    jpeg = build_pack(src, tmp_path / "jpeg.npz", max_mib=1, size=64, progress=False, workers=1)
    webp = build_pack(src, tmp_path / "webp.npz", max_mib=1, size=64, codec="webp", quality=70, progress=False,
                      workers=1)
    assert webp["codec"] == "webp" and jpeg["codec"] == "jpeg" and webp["count"] == jpeg["count"] == 30
    assert webp["bytes"] < 0.8 * jpeg["bytes"]                      # the same photos in fewer bytes
    for s in (jpeg, webp):                                          # the input (L) and the target (a*b*) both
        assert 25 < s["l_psnr_mean"] < 80 and 25 < s["ab_psnr_mean"] < 80 and s["l_psnr_p5"] <= s["l_psnr_mean"]
    cache = load_pack(tmp_path / "webp.npz")                        # any machine with Pillow decodes it
    assert len(cache) == 30 and cache.labels.tolist() == load_pack(tmp_path / "jpeg.npz").labels.tolist()
    original = np.asarray(Image.open(src / "beach" / "00.png").convert("RGB"), dtype=np.float32)
    assert np.abs(cache.images[0].astype(np.float32) - original).mean() < 12
    assert main(["pack", str(src), str(tmp_path / "bad.npz"), "--mib", "1", "--codec", "webp",
                 "--quality", "0"]) == 1                           # one line, no pack written
    assert not (tmp_path / "bad.npz").exists()


@pytest.mark.slow
def test_the_window_end_to_end_on_the_cpu(packs, tmp_path, colour_jpeg):
    train_pack, val_pack = packs
    out = tmp_path / "OUT"
    # a GPU machine has no kornia, PyAV or scikit-image: the window must not import them
    blocker = ("import sys, runpy\n"
               "for name in ('kornia', 'av', 'skimage', 'onnx', 'onnxruntime'):\n"
               "    sys.modules[name] = None   # as if not installed: importing it raises ModuleNotFoundError\n"
               "sys.argv[0] = 'window'\n"
               "runpy.run_module('chromalift.train.gpu_window', run_name='__main__')\n")
    r = subprocess.run([sys.executable, "-c", blocker, "--train", str(train_pack), "--val", str(val_pack),
                        "--out", str(out), "--steps", "2", "--minutes", "0", "--smoke-seconds", "1", "--device", "cpu",
                        "--width", "0.125", "--crop", "32", "--batch-size", "8", "--part-mib", "0.15", "--zoom", "1.5",
                        "--loss", "classify", "--ab-bins", "4", "--ab-prune"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads(r.stdout[r.stdout.index("{\n"):])           # the summary is printed ...
    assert summary == json.loads((out / "summary.json").read_text())  # ... and written
    assert summary["train"]["steps"] == 2 and summary["train"]["image_steps"] == 16
    assert {"val_psnr", "val_psnr_grey", "val_colorfulness", "val_top1"} <= summary["val"].keys()
    assert summary["smoke"]["images_per_s"] > 0
    assert summary["pack"]["count"] == 18 and summary["pack"]["codec"] == "jpeg"   # what the run learnt from
    assert summary["weights_from"] == "last step" and [r["step"] for r in summary["val_curve"]] == [2]
    files = sorted(p.name for p in out.iterdir())
    parts = [f for f in files if ".part" in f]
    assert len(parts) >= 2 and len(files) <= 8                        # what may come back from a window
    assert all((out / p).stat().st_size <= 0.15 * 2**20 for p in parts)
    # back home: join, then colorize with the joined weights
    weights = tmp_path / "trained.safetensors"
    assert main(["join", str(out), str(weights)]) == 0
    assert main([str(colour_jpeg), "--model", str(weights), "-o", str(tmp_path / "c.png")]) == 0
    assert Image.open(tmp_path / "c.png").size == Image.open(colour_jpeg).size
    from chromalift.model.weights import load_weights
    info = load_weights(weights)[2]
    assert info["trained"]["image_steps"] == 16 and info["trained"]["recipe"]["width"] == 0.125
    assert info["trained"]["recipe"]["zoom"] == 1.5 and info["trained"]["recipe"]["loss"] == "classify"
    config = load_weights(weights)[0].config
    assert config.ab_bins == 4 and 2 <= len(config.ab_keep) < 16      # only the bins the pack's photos use


def test_join_refuses_a_damaged_part_and_writes_nothing(tmp_path, tiny_weights, capsys):
    from chromalift.train.gpu_window import split_weights
    split_weights(tiny_weights, tmp_path, tiny_weights.stat().st_size // 3 + 1)
    part = sorted(tmp_path.glob("*.part*"))[1]
    data = bytearray(part.read_bytes())
    data[10] ^= 0xFF
    part.write_bytes(bytes(data))
    assert main(["join", str(tmp_path), str(tmp_path / "w.safetensors")]) == 1
    assert "checksum mismatch" in capsys.readouterr().err and not (tmp_path / "w.safetensors").exists()


def test_the_window_can_return_its_best_validation_instead_of_its_last_step(packs, tmp_path):
    from chromalift.train.gpu_window import main as window
    train_pack, val_pack = packs
    out = tmp_path / "OUT"
    assert window(["--train", str(train_pack), "--val", str(val_pack), "--out", str(out), "--steps", "4",
                   "--minutes", "0", "--smoke-seconds", "0", "--device", "cpu", "--width", "0.125", "--crop", "32",
                   "--batch-size", "8", "--lr", "0.05", "--eval-every", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    curve = summary["val_curve"]
    assert [r["step"] for r in curve] == [1, 2, 3, 4]                 # every step, the last once
    best = min(curve, key=lambda r: r["val_mse"])
    assert summary["weights_from"] == f"best validation (step {best['step']})"
    assert summary["val"]["val_mse"] == best["val_mse"]
    assert main(["join", str(out), str(tmp_path / "best.safetensors")]) == 0


def test_device_batches_resume_exactly(packs, tmp_path):
    from chromalift.train.checkpoint import load_checkpoint
    from chromalift.train.loop import TrainConfig, train
    train_pack, _ = packs
    base = {"data": str(train_pack), "width": 0.125, "crop": 32, "batch_size": 4, "workers": 0, "threads": 1, "progress": False,
                "resident": "on", "optimizer": "adam", "lr": 1e-3, "ckpt_every": 1, "log_every": 1, "eval_every": 100}
    train(TrainConfig(out=str(tmp_path / "a"), steps=6, **base))
    train(TrainConfig(out=str(tmp_path / "b"), steps=3, **base))
    train(TrainConfig(out=str(tmp_path / "b"), steps=6, resume=True, **base))
    a, b = (load_checkpoint(tmp_path / r / "last.pt")["model"] for r in "ab")
    assert max(float((a[k].float() - b[k].float()).abs().max()) for k in a) < 1e-6
    records = [json.loads(x) for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) for r in records if "loss" in r)


def test_device_batches_match_the_loader_contract(packs):
    from chromalift.train.data.batches import TrainBatches
    from chromalift.train.data.device_batches import DeviceBatches
    cache = load_pack(packs[0])
    l, ab, labels = next(DeviceBatches(cache, torch.device("cpu"), crop=32, flip=True, seed=0).epoch(list(range(8)), 4, 0))
    l2, ab2, labels2 = TrainBatches(cache, list(range(8)), 4, crop=32, flip=True, seed=0, epoch=0)[0]
    assert l.shape == l2.shape and ab.shape == ab2.shape and labels.tolist() == labels2.tolist()
    assert float(l.min()) >= -0.5 and float(l.max()) <= 0.5 and float(ab.abs().max()) < 128
