"""Feeding a training run: its caches (a prepared cache, a pack, or a photo folder prepared once), and each
epoch's batches, made on the device or by data-loading processes that leave stop signals to the trainer."""
from __future__ import annotations

import signal
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Subset

from chromalift.train.config import TrainConfig
from chromalift.train.data.batches import TrainBatches
from chromalift.train.data.cache import Cache, prepare
from chromalift.train.data.device_batches import DeviceBatches
from chromalift.train.data.pack import is_pack, load_training_set


def leave_signals_to_the_trainer(_worker_id: int) -> None:
    """Data-loading workers ignore SIGINT and SIGTERM: Ctrl-C, Slurm, Kubernetes and `timeout` signal the
    whole process group, and the trainer itself must live to save a checkpoint and stop its workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})   # blocked by start_workers


def start_workers(batches):
    """iter(batches), with SIGINT and SIGTERM blocked while data-loading workers are forked: a signal to the
    process group in that instant would otherwise kill a worker before it could ignore it. The trainer
    receives a signal that arrived meanwhile as soon as the workers are started."""
    if not isinstance(batches, DataLoader) or not batches.num_workers:
        return iter(batches)
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        return iter(batches)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def epoch_batches(cfg: TrainConfig, cache: Cache, resident: DeviceBatches | None, order: list[int],
                   per_rank: int, epoch: int, first: int, device: torch.device):
    """One epoch's batches from `first` on: made on the device, or by data-loading processes."""
    if resident is not None:
        return resident.epoch(order, per_rank, epoch, first)
    batches = TrainBatches(cache, order, per_rank, crop=cfg.crop, flip=cfg.flip, seed=cfg.seed, epoch=epoch,
                           zoom=cfg.zoom)
    workers = loader_workers(cfg, device)
    return DataLoader(Subset(batches, range(first, len(batches))), batch_size=None, num_workers=workers,
                      pin_memory=device.type == "cuda", persistent_workers=False,
                      prefetch_factor=4 if workers else None,
                      worker_init_fn=leave_signals_to_the_trainer if workers else None)


def loader_workers(cfg: TrainConfig, device: torch.device) -> int:
    """--workers, or by default none on a CPU: making a batch costs a few percent of a step there, and a
    loader process takes a core from the step's threads (docs/speed.md); one elsewhere."""
    if cfg.workers is not None:
        return cfg.workers
    return 0 if device.type == "cpu" else 1


def resident_batches(cfg: TrainConfig, cache: Cache, device: torch.device) -> DeviceBatches | None:
    if cfg.resident not in ("auto", "on", "off"):
        raise ValueError(f"--resident {cfg.resident}: choose auto, on or off")
    on = cfg.resident == "on" or (cfg.resident == "auto" and device.type == "cuda")
    return DeviceBatches(cache, device, crop=cfg.crop, flip=cfg.flip, seed=cfg.seed, zoom=cfg.zoom) if on else None


def cache_for(path: str, out: Path, name: str, cfg: TrainConfig, rank: int, world: int,
               classes: list[str] | None = None) -> Cache:
    """A prepared cache or a pack as is, or a photo folder prepared once into the run folder (by rank 0)."""
    p = Path(path)
    if is_pack(p) or (p / "meta.json").exists():
        return load_training_set(p)
    target = out / f"cache-{name}"
    if rank == 0 and not (target / "meta.json").exists():
        prepare(p, target, size=cfg.prepare_size, min_color_std=cfg.min_color_std, classes=classes,
                progress=cfg.progress)
    if world > 1:
        dist.barrier()
    return load_training_set(target)
