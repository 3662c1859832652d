"""Speed changes to the trainer that must not change what it learns: the soft targets from the cell
candidates, the bin cross-entropy a chunk of rows at a time, and batches made in the training process by
default on a CPU."""
from __future__ import annotations

import json
import subprocess
import sys
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


def _losses(cache: Path, out: Path, lr: float = 1e-3, **kw) -> list[float]:
    train(TrainConfig(data=str(cache), out=str(out), width=0.125, crop=32, batch_size=8, steps=6, log_every=1,
                      ckpt_every=100, threads=1, progress=False, optimizer="adam", lr=lr, zoom=2.0, seed=3, **kw))
    return [r["loss"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "loss" in r]


@pytest.mark.parametrize("rows", [losses._ROWS, 100])    # one chunk a batch here, and many
def test_the_soft_targets_train_as_measuring_every_bin_did(cache, tmp_path, monkeypatch, rows):
    monkeypatch.setattr(losses, "_ROWS", rows)
    # a small step: at lr 1e-3 Adam on this tiny network grew the two sums' float rounding (1e-7) ten-fold a
    # step, to 0.6% by step 6 on a Xeon with AMX; a wrong target would differ from the first step on
    recipe = {"loss": "classify", "ab_bins": 8, "ab_prune": True, "ab_soft": 5.0, "workers": 0, "amp": False,
              "lr": 1e-5}
    fast = _losses(cache, tmp_path / "fast", **recipe)
    monkeypatch.setattr(losses, "ab_bin_soft_cross_entropy",
                        lambda logits, ab, soft: _every_bin_soft_cross_entropy(logits, ab, soft.points[:-1], soft.sigma).float())
    plain = _losses(cache, tmp_path / "plain", **recipe)
    assert len(fast) == 6 and fast == pytest.approx(plain, rel=1e-4, abs=1e-5)


def _plain(logits, ab, soft=None, target=None):
    """Torch's own cross-entropy through autograd, in float32: what the chunked loss computes."""
    b, q, h, w = logits.shape
    flat = logits.permute(0, 2, 3, 1).reshape(-1, q).float()
    if soft is None:
        return torch.nn.functional.cross_entropy(flat, target.reshape(-1), reduction="none").view(b, 1, h, w)
    nearest, weights = soft.encode(ab.permute(0, 2, 3, 1).reshape(-1, 2))
    return (torch.logsumexp(flat, 1) - (flat.gather(1, nearest) * weights).sum(1)).view(b, 1, h, w)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("kind", ["hard", "soft"])
def test_the_chunked_bin_loss_and_its_gradient_are_torchs_own(monkeypatch, dtype, kind):
    """Across chunk edges (rows not a multiple of the chunk), with per-pixel weights on the loss, in either
    precision: the same losses and the same gradient as autograd through torch's cross-entropy."""
    monkeypatch.setattr(losses, "_ROWS", 64)
    torch.manual_seed(4)
    centres = torch.rand(30, 2) * 160 - 80
    soft = losses.SoftBins(centres, 5.0) if kind == "soft" else None
    ab = torch.rand(3, 2, 9, 11) * 120 - 60
    target = torch.randint(0, 30, (3, 9, 11))
    raw = (torch.randn(3, 30, 9, 11) * 3).to(memory_format=torch.channels_last).to(dtype)
    pixel_weights = torch.rand(3, 1, 9, 11)
    chunked = ((lambda x: losses.ab_bin_soft_cross_entropy(x, ab, soft)) if soft else
               (lambda x: losses.ab_bin_cross_entropy(x, target)))
    results = []
    for fn in (chunked, lambda x: _plain(x, ab, soft, target)):
        logits = raw.clone().requires_grad_()
        loss = fn(logits)
        (loss * pixel_weights).mean().backward()
        results.append((loss.detach(), logits.grad.float()))
    (chunked, grad), (plain, plain_grad) = results
    assert chunked.dtype == torch.float32 and torch.allclose(chunked, plain, atol=1e-5)
    assert torch.allclose(grad, plain_grad, atol=1e-6, rtol=1e-2 if dtype == torch.bfloat16 else 1e-5)


def test_the_bin_loss_without_gradients_makes_none():
    logits = torch.randn(1, 5, 4, 4, requires_grad=True)
    with torch.no_grad():
        loss = losses.ab_bin_cross_entropy(logits, torch.zeros(1, 4, 4, dtype=torch.long))
    assert loss.shape == (1, 1, 4, 4) and not loss.requires_grad


def test_batches_made_in_the_trainer_train_as_a_loader_process_did(cache, tmp_path):
    assert _losses(cache, tmp_path / "in", workers=None) == pytest.approx(_losses(cache, tmp_path / "loader", workers=1),
                                                                            rel=1e-5, abs=1e-6)


def test_no_loader_process_on_a_cpu_by_default():
    cfg = TrainConfig(data="d", out="o")
    assert loader_workers(cfg, torch.device("cpu")) == 0 and loader_workers(cfg, torch.device("cuda", 0)) == 1
    assert loader_workers(TrainConfig(data="d", out="o", workers=3), torch.device("cpu")) == 3




_FAULTS = """
import resource, sys, torch
from chromalift.train.heap import keep_freed_memory

kept = keep_freed_memory() if sys.argv[1] == "keep" else None
for step in range(8):   # a step's 64 MiB buffer, made, used and freed; the faults of the last four steps
    if step == 4:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.empty(2 ** 24).fill_(1.0)
    small = [torch.empty(100) for _ in range(50)]   # the small allocations a step makes between its large ones
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(how: str) -> tuple[str, int]:
    kept, faults = subprocess.run([sys.executable, "-c", _FAULTS, how], capture_output=True, text=True,
                                  check=True).stdout.split()
    return kept, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_a_steps_freed_memory_is_kept_for_the_next_step():
    """glibc gives a large tensor's pages back on free, so every step faults 16k pages in again; with
    keep_freed_memory (as the trainer runs on a CPU) glibc settles within the first four steps (the heap
    grows once or twice) and then reuses them. In processes of their own: the setting is for the whole
    process."""
    (_, plain), (kept, after) = _faults("plain"), _faults("keep")
    assert kept == "True"
    assert plain >= 4 * 32          # 16k pages of 4 KiB a step, or 32 of 2 MiB where the kernel hands out huge pages
    assert after < plain / 20
