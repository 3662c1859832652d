"""The trainer: learning, exact resume after Ctrl-C / SIGTERM / kill -9, torchrun DDP, bad input."""
from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import gradient_rgb, make_photo_folder
from PIL import Image

from chromalift.model.weights import CheckpointError
from chromalift.train.checkpoint import load_checkpoint, save_checkpoint
from chromalift.train.data.batches import EpochSampler
from chromalift.train.data.cache import DataError, load_cache, prepare
from chromalift.train.loop import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    photos = make_photo_folder(root / "photos")
    train_cache = prepare(photos, root / "train", size=40, progress=False, workers=1)
    prepare(make_photo_folder(root / "valphotos", per_class=4), root / "val", size=40,
                        classes=train_cache.classes, progress=False, workers=1)
    return root / "train", root / "val"


def tiny(out: Path, data: Path, **kw) -> TrainConfig:
    args = {"data": str(data), "out": str(out), "width": 0.125, "crop": 32, "batch_size": 8, "steps": 12, "eval_every": 6,
                "ckpt_every": 2, "log_every": 2, "workers": 0, "threads": 1, "progress": False, "optimizer": "adadelta"}
    args.update(kw)
    return TrainConfig(**args)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "chromalift", "train", *args]


def tiny_args(data: Path, out: Path, steps: int, *extra: str) -> list[str]:
    return cli("--data", str(data), "--out", str(out), "--width", "0.125", "--crop", "32", "--batch-size", "8",
               "--steps", str(steps), "--ckpt-every", "1", "--log-every", "1", "--workers", "0", "--threads", "1",
               "--no-progress", *extra)


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "last.pt")["model"]


def assert_same_weights(a: dict, b: dict, atol: float = 1e-6):
    assert a.keys() == b.keys()
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert worst <= atol, f"weights differ by up to {worst}"


def test_prepare_labels_and_skips(tmp_path):
    photos = make_photo_folder(tmp_path / "p", per_class=3)
    Image.new("RGB", (40, 40), (128, 128, 128)).save(photos / "beach" / "grey.png")   # near-grey: skipped
    (photos / "forest" / "broken.jpg").write_text("not a photo")                      # unreadable: skipped
    cache = prepare(photos, tmp_path / "c", size=32, progress=False, workers=1)
    meta = json.loads((tmp_path / "c" / "meta.json").read_text())
    assert len(cache) == 6 and cache.classes == ["beach", "forest"]
    assert meta["skipped"] == {"grey": 1, "unreadable": 1}
    assert sorted(cache.labels.tolist()) == [0, 0, 0, 1, 1, 1]
    assert cache.images.shape == (6, 32, 32, 3)


def test_training_learns_and_logs(caches, tmp_path):
    train_dir, val_dir = caches
    metrics = train(tiny(tmp_path / "run", train_dir, val=str(val_dir), steps=30, eval_every=30,
                         optimizer="adam", lr=3e-3))
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    assert {"images_per_s", "data_wait_fraction"} <= log[0].keys()
    assert {"val_mse", "val_psnr", "val_psnr_grey", "val_top1", "val_top5"} <= metrics.keys()
    assert (tmp_path / "run" / "best.pt").exists() and (tmp_path / "run" / "last.pt").exists()
    assert list((tmp_path / "run" / "tb").iterdir())      # TensorBoard events


def test_flat_folder_trains_without_labels(tmp_path):
    photos = tmp_path / "flat"
    photos.mkdir()
    for i in range(10):
        Image.fromarray(gradient_rgb(40, 40, seed=i)).save(photos / f"{i}.png")
    train(tiny(tmp_path / "run", photos, steps=2, prepare_size=40))
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state["model_config"]["num_classes"] == 0 and state["step"] == 2


@pytest.mark.slow
def test_resume_after_sigint_sigterm_and_kill_matches_uninterrupted_run(caches, tmp_path):
    train_dir, _ = caches
    steps = 40
    subprocess.run(tiny_args(train_dir, tmp_path / "straight", steps), check=True, cwd=ROOT)
    for how in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        run = tmp_path / f"cut-{how.name}"
        proc = subprocess.Popen(tiny_args(train_dir, run, steps), cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        log = run / "log.jsonl"
        deadline = time.time() + 120
        while time.time() < deadline and not (log.exists() and len(log.read_text().splitlines()) >= 8):
            time.sleep(0.05)
        proc.send_signal(how)
        out, err = proc.communicate(timeout=120)
        stopped_at = load_checkpoint(run / "last.pt")["step"]
        assert 0 < stopped_at < steps, f"{how.name}: the run was not interrupted midway"
        if how != signal.SIGKILL:   # a clean stop: saved, one line, no traceback
            assert proc.returncode == 130 and "Traceback" not in err and "--resume" in out
        subprocess.run(tiny_args(train_dir, run, steps, "--resume"), check=True, cwd=ROOT)
        assert load_checkpoint(run / "last.pt")["step"] == steps
        assert_same_weights(weights(run), weights(tmp_path / "straight"))


def test_refuses_to_clobber_a_run_and_checks_config_on_resume(caches, tmp_path):
    train_dir, _ = caches
    train(tiny(tmp_path / "run", train_dir, steps=2))
    with pytest.raises(CheckpointError, match="--resume"):
        train(tiny(tmp_path / "run", train_dir, steps=4))
    with pytest.raises(CheckpointError, match="another model"):
        train(tiny(tmp_path / "run", train_dir, steps=4, width=0.25, resume=True))
    # a checkpoint from before an inference setting was added (its config lacks the key) still resumes
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    del state["model_config"]["coarse_blend"]
    save_checkpoint(tmp_path / "run" / "last.pt", state)
    train(tiny(tmp_path / "run", train_dir, steps=3, resume=True))
    assert load_checkpoint(tmp_path / "run" / "last.pt")["step"] == 3


@pytest.mark.slow
def test_bad_data_gives_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        prepare(tmp_path / "empty", tmp_path / "c", progress=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_text("nope")
    with pytest.raises(DataError, match="none of the 1 images is usable"):
        prepare(bad, tmp_path / "c", progress=False, workers=1)
    with pytest.raises(DataError, match="not a prepared cache"):
        load_cache(tmp_path / "empty")
    r = subprocess.run(cli("--data", str(tmp_path / "empty"), "--out", str(tmp_path / "run")), cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 1 and "no images" in r.stderr and "Traceback" not in r.stderr


def test_shards_of_two_processes_make_up_the_single_process_batches(caches):
    cache = load_cache(caches[0])
    one = EpochSampler(len(cache), seed=3)
    ranks = [EpochSampler(len(cache), seed=3, rank=r, world=2) for r in (0, 1)]
    for epoch in (0, 1):
        for s in (one, *ranks):
            s.set_epoch(epoch)
        order = list(one)
        shards = [list(s) for s in ranks]
        for b in range(len(order) // 8):   # global batch 8 = 4 per process
            assert sorted(order[8 * b:8 * b + 8]) == sorted(shards[0][4 * b:4 * b + 4] + shards[1][4 * b:4 * b + 4])


@pytest.mark.slow
def test_two_processes_with_torchrun_train_the_same_model_as_one(caches, tmp_path):
    """One step of 2 processes x 6 photos against 1 process x 12: the same update.

    The tolerance is measured: float rounding differs with the split (about 2e-4 here), while
    normalising each process's half-batch on its own, the usual DDP mistake, is off by about 6e-3.
    Training this tiny net amplifies rounding within a few steps, so later steps cannot be compared."""
    train_dir, _ = caches
    common = ["--data", str(train_dir), "--width", "0.125", "--crop", "32", "--batch-size", "12",
              "--steps", "1", "--ckpt-every", "1", "--workers", "0", "--threads", "1", "--no-progress",
              "--no-amp"]   # fp32: bf16 rounding (on CPUs that have it) would hide what this test measures
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "chromalift", "train", *common, "--out", str(tmp_path / "one")],
                   check=True, cwd=ROOT, env=env, timeout=300)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                    "-m", "chromalift", "train", *common, "--out", str(tmp_path / "two")],
                   check=True, cwd=ROOT, env=env, timeout=300)
    one, two = weights(tmp_path / "one"), weights(tmp_path / "two")
    learnable = [k for k in one if "running" not in k and "num_batches" not in k]
    assert_same_weights({k: one[k] for k in learnable}, {k: two[k] for k in learnable}, atol=1e-3)
    # the running statistics agree too: batch norm saw the same global batch
    assert_same_weights({k: one[k] for k in one if "running_mean" in k}, {k: two[k] for k in one if "running_mean" in k},
                        atol=1e-3)
    assert load_checkpoint(tmp_path / "two" / "last.pt")["step"] == 1


def test_cosine_schedule_warms_up_then_ends_at_the_final_rate():
    from chromalift.train.schedule import lr_at, progress
    cfg = TrainConfig(data="d", out="o", steps=100, schedule="cosine", warmup=0.1, final_lr=0.02)
    rates = [lr_at(cfg, 1e-3, progress(cfg, s, 0.0)) for s in range(101)]
    assert rates[0] < rates[5] < rates[10] == pytest.approx(1e-3)          # linear warm-up to the peak
    assert all(a >= b for a, b in itertools.pairwise(rates[10:]))          # then it only decays
    assert rates[100] == pytest.approx(2e-5)                                # ... ending exactly at the end
    constant = TrainConfig(data="d", out="o", steps=100)
    assert {lr_at(constant, 1e-3, progress(constant, s, 0.0)) for s in range(101)} == {1e-3}


def test_time_budget_keys_the_schedule_to_the_clock():
    from chromalift.train.schedule import lr_at, progress
    cfg = TrainConfig(data="d", out="o", steps=10**6, minutes=2.0, schedule="cosine", warmup=0.0)
    assert progress(cfg, 10, 60.0) == pytest.approx(0.5)       # half the budget spent, few of the steps
    assert progress(cfg, 10, 500.0) == 1.0
    assert lr_at(cfg, 1.0, progress(cfg, 10, 60.0)) == pytest.approx(0.51)


@pytest.mark.slow
def test_minutes_stops_the_run_cleanly_and_resume_keeps_the_spent_budget(caches, tmp_path):
    train_dir, _ = caches
    cfg = tiny(tmp_path / "run", train_dir, steps=10**6, minutes=0.05, schedule="cosine", eval_every=10**6)
    t0 = time.perf_counter()
    train(cfg)
    assert time.perf_counter() - t0 < 60
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert 0 < state["step"] < 10**6 and state["seconds"] >= 3.0
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in records if "lr" in r]
    peak = lrs.index(max(lrs))
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1:]))     # the cosine only decays after warm-up
    # adadelta's 1.0 decayed into the cosine's last stretch, never below the final rate (0.02): the last
    # logged step may come a little before the budget's end on a loaded machine, so not exactly 0.02
    assert 0.02 * 0.999 <= lrs[-1] < 0.25
    # a resumed run whose budget is spent does nothing more
    train(TrainConfig(**{**cfg.__dict__, "resume": True}))
    assert load_checkpoint(tmp_path / "run" / "last.pt")["step"] == state["step"]


def test_init_starts_from_weights_and_refuses_another_architecture(caches, tmp_path):
    from chromalift.model.network import ColorizationNet, ModelConfig
    from chromalift.model.weights import save_weights
    train_dir, _ = caches
    classes = load_cache(train_dir).classes
    torch.manual_seed(7)
    start = ColorizationNet(ModelConfig(num_classes=len(classes), width=0.125, global_size=32, ab_gain=1.1,
                                        global_flip="scenes", coarse_blend=0.5))
    save_weights(tmp_path / "start.safetensors", start, classes=classes)   # a shipped model: settings for inference
    train(tiny(tmp_path / "run", train_dir, steps=1, eval_every=100, init=str(tmp_path / "start.safetensors"),
               optimizer="adam", lr=1e-9))
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    trained = state["model"]
    assert (state["model_config"]["ab_gain"], state["model_config"]["global_flip"],
            state["model_config"]["coarse_blend"]) == (1.0, "off", 0.0), "the run trains without inference settings"
    key = next(k for k in trained if k.endswith("0.0.weight"))      # the first convolution
    assert torch.allclose(trained[key], start.state_dict()[key], atol=1e-6), key
    other = ColorizationNet(ModelConfig(num_classes=len(classes), width=0.25, global_size=32))
    save_weights(tmp_path / "other.safetensors", other, classes=classes)
    with pytest.raises(CheckpointError, match="another model"):
        train(tiny(tmp_path / "run2", train_dir, steps=1, init=str(tmp_path / "other.safetensors")))


def test_init_across_colour_heads_starts_every_layer_but_the_new_head(caches, tmp_path, capsys):
    from chromalift.model.network import ColorizationNet, ModelConfig
    from chromalift.model.weights import save_weights
    train_dir, _ = caches
    classes = load_cache(train_dir).classes
    torch.manual_seed(7)
    start = ColorizationNet(ModelConfig(num_classes=len(classes), width=0.125, global_size=32))   # regression
    save_weights(tmp_path / "start.safetensors", start, classes=classes)
    train(tiny(tmp_path / "run", train_dir, steps=1, eval_every=100, init=str(tmp_path / "start.safetensors"),
               optimizer="adam", lr=1e-9, loss="classify", ab_bins=4))
    assert "colour head differs" in capsys.readouterr().out
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    trained, own = state["model"], start.state_dict()
    assert state["model_config"]["ab_bins"] == 4
    head = {k for k in trained if k.startswith("colorization.layers.6.")}
    assert head == {"colorization.layers.6.weight", "colorization.layers.6.bias"}
    assert trained["colorization.layers.6.weight"].shape[0] == 16              # 4 x 4 bins, not the 2 of a*b*
    for k in trained.keys() - head:
        if trained[k].is_floating_point() and "running" not in k:             # batch-norm statistics move in a step
            assert torch.allclose(trained[k], own[k], atol=1e-6), k


@pytest.mark.parametrize("channels_last", [False, True])
def test_ab_bin_loss_is_the_per_pixel_cross_entropy_in_either_memory_format(channels_last):
    from chromalift.train.losses import ab_bin_targets, compute_loss
    torch.manual_seed(0)
    head = torch.randn(2, 16, 5, 3)                                        # logits over 4 x 4 bins
    head = head.to(memory_format=torch.channels_last) if channels_last else head
    ab = torch.rand(2, 2, 5, 3) * 200 - 100
    model = lambda l: (head, None)
    from chromalift.train.data.cache import AB_BINS, ab_bin_index
    weights = torch.rand(AB_BINS * AB_BINS)                               # a rebalancing table
    _, loss, _, _ = compute_loss(model, None, ab, torch.full((2,), -1), alpha=0, ab_weights=None, ab_bins=4)
    target = ab_bin_targets(ab, 4)                                        # (2, 5, 3)
    per_pixel = -torch.log_softmax(head, 1).gather(1, target[:, None])    # (2, 1, 5, 3)
    assert torch.allclose(loss, per_pixel.mean(), atol=1e-6)
    _, weighted, _, _ = compute_loss(model, None, ab, torch.full((2,), -1), alpha=0, ab_weights=weights, ab_bins=4)
    assert torch.allclose(weighted, (per_pixel * weights[ab_bin_index(ab)][:, None]).mean(), atol=1e-6)


def test_saturated_targets_scale_chroma_keep_hue_and_stay_in_the_bins_range():
    from chromalift.color.lab import AB_RANGE
    from chromalift.train.losses import saturated
    ab = torch.tensor([[3.0, -4.0], [60.0, 20.0], [120.0, -30.0], [0.0, 0.0]]).T.reshape(1, 2, 4, 1)
    out = saturated(ab, 1.2)
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([3.6, -4.8]))          # 1.2x the chroma
    assert torch.allclose(out[0, :, 1, 0], torch.tensor([72.0, 24.0]))
    assert torch.allclose(out[0, :, 2, 0], torch.tensor([AB_RANGE, -32.0]))   # capped at the range, hue kept
    assert torch.equal(out[0, :, 3, 0], torch.zeros(2))                       # grey stays grey
    assert saturated(ab, 1.0) is ab
    assert torch.allclose(saturated(ab, 0.5), ab * 0.5)


def test_the_bin_loss_trains_towards_the_saturated_colour():
    from chromalift.train.losses import ab_bin_targets, compute_loss
    head = torch.randn(1, 16, 2, 2)
    ab = torch.full((1, 2, 2, 2), 40.0)                    # a bin whose 1.6x lies one bin further out
    model = lambda l: (head, None)
    _, plain, _, _ = compute_loss(model, None, ab, torch.full((1,), -1), alpha=0, ab_weights=None, ab_bins=4)
    _, vivid, _, _ = compute_loss(model, None, ab, torch.full((1,), -1), alpha=0, ab_weights=None, ab_bins=4,
                                  saturation=1.6)
    assert not torch.equal(ab_bin_targets(ab, 4), ab_bin_targets(ab * 1.6, 4))
    for loss, colour in ((plain, ab), (vivid, ab * 1.6)):
        target = ab_bin_targets(colour, 4)
        assert torch.allclose(loss, -torch.log_softmax(head, 1).gather(1, target[:, None]).mean(), atol=1e-6)


def test_the_colourfulness_loss_is_ddcolors_on_the_decoded_photo_and_its_gradient_adds_colour():
    from chromalift.color.lab import lab_to_rgb, normalize_l
    from chromalift.evaluation.metrics import colorfulness_u8
    from chromalift.train.losses import colourfulness_shortfall
    torch.manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [40.0, 30.0], [-30.0, 40.0], [10.0, -45.0]])
    pick = torch.randint(0, 4, (2, 6, 5))
    head = torch.nn.functional.one_hot(pick, 4).permute(0, 3, 1, 2).float() * 60.0     # one bin each, sharply
    lum = torch.rand(2, 1, 6, 5) * 60 + 20
    loss = colourfulness_shortfall(head, normalize_l(lum), centres)
    photos = lab_to_rgb(torch.cat([lum, centres[pick].permute(0, 3, 1, 2)], 1))
    cf = [colorfulness_u8(p.permute(1, 2, 0).double().numpy() * 255.0) for p in photos]
    assert abs(float(loss) - (1 - np.mean(cf) / 100)) < 1e-3
    grey = torch.zeros(1, 4, 6, 5, requires_grad=True)                  # even odds: a greyish mean
    before = colourfulness_shortfall(grey, normalize_l(lum[:1]), centres)
    before.backward()
    after = colourfulness_shortfall(grey.detach() - 50.0 * grey.grad, normalize_l(lum[:1]), centres)
    assert float(after) < float(before.detach())                        # the step made it more colourful


@pytest.mark.parametrize("setting, value, bad", [("target_saturation", 1.2, "0"),      # a factor must be > 0
                                                ("colorfulness_loss", 0.5, "1")])     # and this needs the bins
def test_a_vividness_lever_trains_is_recorded_and_a_bad_value_is_one_line(caches, tmp_path, setting, value, bad):
    train_dir, _ = caches
    train(tiny(tmp_path / "run", train_dir, steps=2, loss="classify", ab_prune=True, **{setting: value}))
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state["step"] == 2 and state["args"][setting] == value
    flag = "--" + setting.replace("_", "-")
    r = subprocess.run([sys.executable, "-m", "chromalift", "train", "--data", str(train_dir), "--out",
                        str(tmp_path / "bad"), "--crop", "32", flag, bad], capture_output=True, text=True)
    assert r.returncode != 0 and f"{flag} {bad}" in r.stderr and "Traceback" not in r.stderr


def test_classification_loss_over_ab_bins_learns_and_its_weights_colorize(caches, tmp_path, colour_jpeg):
    from chromalift.cli.main import main
    from chromalift.train.losses import ab_bin_targets
    ab = torch.tensor([[-128.0, 0.0, 127.9], [-128.0, 0.0, 127.9]]).reshape(1, 2, 3, 1)   # a and b, 3 pixels
    assert ab_bin_targets(ab, 4).flatten().tolist() == [0, 2 * 4 + 2, 15]       # corners and the centre bin
    train_dir, val_dir = caches
    run = tmp_path / "run"
    metrics = train(tiny(run, train_dir, val=str(val_dir), steps=20, eval_every=20, optimizer="adam", lr=3e-3,
                         loss="classify", ab_bins=8))
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    losses = [r["color_loss"] for r in log if "color_loss" in r]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])               # the bin cross-entropy falls
    assert np.isfinite(metrics["val_psnr"])
    assert main(["weights", str(run / "last.pt"), str(tmp_path / "w.safetensors")]) == 0
    assert main([str(colour_jpeg), "--model", str(tmp_path / "w.safetensors"), "-o", str(tmp_path / "c.png")]) == 0


def test_init_maps_the_classifier_by_class_name_and_the_head_by_bin(tmp_path, capsys):
    """A training set with other classes keeps what the weights learnt of the classes it shares, and a
    head over more bins of the same grid keeps the bins the weights had (new ones start as the rarest)."""
    from chromalift.model.network import ColorizationNet, ModelConfig
    from chromalift.model.weights import save_weights
    from chromalift.train.checkpoint import init_from
    torch.manual_seed(3)
    old = ColorizationNet(ModelConfig(num_classes=3, width=0.125, global_size=32, ab_bins=4, ab_keep=(1, 5, 9)))
    save_weights(tmp_path / "old.safetensors", old, classes=["a", "b", "c"])
    new = ColorizationNet(ModelConfig(num_classes=4, width=0.125, global_size=32, ab_bins=4, ab_keep=(1, 5, 6, 9)))
    fresh = {k: v.clone() for k, v in new.state_dict().items()}
    init_from(new, str(tmp_path / "old.safetensors"), ["c", "d", "a", "e"])
    assert "afresh: 1 of its 4 ab bins; 2 of its 4 scene classes" in capsys.readouterr().out
    was, now = old.state_dict(), new.state_dict()
    for layer, pairs, new_rows in (("classification.1", [(0, 2), (2, 0)], [1, 3]),
                                   ("colorization.layers.6", [(0, 0), (1, 1), (3, 2)], [2])):
        for j, i in pairs:
            assert torch.equal(now[f"{layer}.weight"][j], was[f"{layer}.weight"][i])
            assert torch.equal(now[f"{layer}.bias"][j], was[f"{layer}.bias"][i])
        for j in new_rows:
            assert torch.equal(now[f"{layer}.weight"][j], fresh[f"{layer}.weight"][j])
    assert now["colorization.layers.6.bias"][2] == was["colorization.layers.6.bias"].min()
    for k in was.keys() - {f"{n}.{p}" for n in ("classification.1", "colorization.layers.6") for p in ("weight", "bias")}:
        assert torch.equal(now[k], was[k]), k


def test_class_weights_draw_a_source_more_often():
    from types import SimpleNamespace

    from chromalift.train.data.batches import sampling_weights
    cache = SimpleNamespace(classes=["abbey", "fl_rose", "fl_tulip", "in_church"],
                            labels=np.array([0, 1, 2, 3, -1, 1]), colorfulness=np.array([1, 2, 3, 4, 5, 6.0]))
    assert sampling_weights(cache) is None
    assert sampling_weights(cache, class_weights="fl_*=3, in_*=0.5").tolist() == [1, 3, 3, 0.5, 1, 3]
    assert sampling_weights(cache, 1.0, "fl_rose=2").tolist() == [1, 4, 3, 4, 5, 12]
    assert sampling_weights(cache, class_weights="fl_rose=2,fl_*=5").tolist()[:3] == [1, 2, 5]   # first match wins
    for bad, says in (("fl_*", "PATTERN=W"), ("fl_*=x", "PATTERN=W"), ("fl_*=0", "positive"), ("zz_*=2", "matches none")):
        with pytest.raises(ValueError, match=says):
            sampling_weights(cache, class_weights=bad)
    sampler = EpochSampler(6, seed=0, weights=sampling_weights(cache, class_weights="in_*=20"))
    drawn = [i for epoch in range(200) if not sampler.set_epoch(epoch) for i in sampler]
    assert 0.7 < drawn.count(3) / len(drawn) < 0.9        # 20 / 25 of the weight


def test_validation_psnr_stays_finite_with_a_grey_photo(tmp_path):
    """A grey photo in the validation set (prepared with --min-color-std 0) made the grey baseline's mean
    PSNR infinite; both PSNRs are now over the photos that have colour."""
    from chromalift.model.network import ColorizationNet, ModelConfig
    from chromalift.train.validation import validate
    folder = make_photo_folder(tmp_path / "photos", per_class=3, size=32)
    Image.fromarray(np.full((32, 32, 3), 120, np.uint8)).save(folder / "beach" / "grey.png")
    prepare(folder, tmp_path / "cache", size=32, min_color_std=0)
    model = ColorizationNet(ModelConfig(num_classes=2, width=0.125, global_size=32))
    metrics = validate(model, load_cache(tmp_path / "cache"), crop=32, device=torch.device("cpu"))
    assert np.isfinite(metrics["val_psnr_grey"]) and np.isfinite(metrics["val_psnr"])
