"""Training the paper's network: MSE on normalised ab + alpha x scene cross-entropy, ADADELTA by default.

Readable top to bottom: set up (device, processes, data, model, optimiser), maybe resume, then one
loop of steps with validation, logging and checkpoints. One process or many through torchrun
(DistributedDataParallel; rank 0 logs, validates and saves). Runs resume exactly: the data order and
augmentations are functions of (seed, epoch, photo) and the checkpoint holds model, optimiser and step.
"""
from __future__ import annotations

import json
import math
import signal
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Subset

from . import checkpoint as ckpt
from . import distributed
from .data import (
    Cache,
    DataError,
    EpochSampler,
    TrainBatches,
    load_cache,
    prepare,
    rebalance_weights,
)
from .device import bf16_peak_flops, cpu_has_fast_bf16, pick_device
from .device_batches import DeviceBatches
from .losses import compute_loss
from .model import ColorizationNet, ModelConfig, count_macs
from .pack import is_pack, load_pack
from .schedule import lr_at, progress
from .train_config import TrainConfig
from .validation import validate


class Stop(Exception):
    pass


def _leave_signals_to_the_trainer(_worker_id: int) -> None:
    """Data-loading workers ignore SIGINT and SIGTERM: Ctrl-C, Slurm, Kubernetes and `timeout` signal the
    whole process group, and the trainer itself must live to save a checkpoint and stop its workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})   # blocked by _start_workers


def _start_workers(batches):
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


def autocast_for(cfg: TrainConfig, device: torch.device):
    """bf16 autocast where the hardware has it: CUDA, or a CPU with native bf16 (else it runs far slower)."""
    enabled = cfg.amp and (device.type == "cuda" or (device.type == "cpu" and cpu_has_fast_bf16()))
    return torch.autocast(device.type if device.type in ("cuda", "cpu") else "cpu", dtype=torch.bfloat16,
                          enabled=enabled)


def _epoch_batches(cfg: TrainConfig, cache: Cache, resident: DeviceBatches | None, order: list[int],
                   per_rank: int, epoch: int, first: int, device: torch.device):
    """One epoch's batches from `first` on: made on the device, or by data-loading processes."""
    if resident is not None:
        return resident.epoch(order, per_rank, epoch, first)
    batches = TrainBatches(cache, order, per_rank, crop=cfg.crop, flip=cfg.flip, seed=cfg.seed, epoch=epoch)
    return DataLoader(Subset(batches, range(first, len(batches))), batch_size=None, num_workers=cfg.workers,
                      pin_memory=device.type == "cuda", persistent_workers=False,
                      prefetch_factor=4 if cfg.workers else None,
                      worker_init_fn=_leave_signals_to_the_trainer if cfg.workers else None)


def _resident(cfg: TrainConfig, cache: Cache, device: torch.device) -> DeviceBatches | None:
    if cfg.resident not in ("auto", "on", "off"):
        raise ValueError(f"--resident {cfg.resident}: choose auto, on or off")
    on = cfg.resident == "on" or (cfg.resident == "auto" and device.type == "cuda")
    return DeviceBatches(cache, device, crop=cfg.crop, flip=cfg.flip, seed=cfg.seed) if on else None


def _init_from(model: ColorizationNet, path: str, classes: list[str]) -> None:
    """Start from shipped weights: the same architecture, and the same classes in the same order."""
    init_model, init_classes, _ = ckpt.load_weights(path)
    if init_model.config != model.config:
        raise ckpt.CheckpointError(f"{path}: weights are of another model ({init_model.config.to_dict()}), "
                                   f"not {model.config.to_dict()}")
    if model.config.num_classes and init_classes != classes:
        raise ckpt.CheckpointError(f"{path}: its scene classes differ from the training data's")
    model.load_state_dict(init_model.state_dict())


def _cache_for(path: str, out: Path, name: str, cfg: TrainConfig, rank: int, world: int,
               classes: list[str] | None = None) -> Cache:
    """A prepared cache or a pack as is, or a photo folder prepared once into the run folder (by rank 0)."""
    p = Path(path)
    if is_pack(p):
        return load_pack(p)
    if (p / "meta.json").exists():
        return load_cache(p)
    target = out / f"cache-{name}"
    if rank == 0 and not (target / "meta.json").exists():
        prepare(p, target, size=cfg.prepare_size, min_color_std=cfg.min_color_std, classes=classes,
                progress=cfg.progress)
    if world > 1:
        dist.barrier()
    return load_cache(target)


def train(cfg: TrainConfig) -> dict:
    """Run (or resume) training as configured; returns the last validation metrics."""
    rank, world, local_rank = distributed.setup()
    main = rank == 0
    device = pick_device(cfg.device, local_rank=local_rank)
    if cfg.threads and device.type == "cpu":
        torch.set_num_threads(cfg.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True    # fixed shapes: let cuDNN pick the fastest convolutions
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    last_path, best_path = out / "last.pt", out / "best.pt"
    if last_path.exists() and not cfg.resume:
        raise ckpt.CheckpointError(f"{out}: holds a run already (last.pt); pass --resume to continue it or choose another --out")
    if cfg.batch_size % world:
        raise DataError(f"batch size {cfg.batch_size} does not split evenly over {world} processes")
    torch.manual_seed(cfg.seed)

    # data
    train_cache = _cache_for(cfg.data, out, "train", cfg, rank, world)
    val_cache = _cache_for(cfg.val, out, "val", cfg, rank, world, classes=train_cache.classes) if cfg.val else None
    if train_cache.size < cfg.crop:
        raise DataError(f"{cfg.data}: photos are {train_cache.size} px, smaller than --crop {cfg.crop}")
    per_rank = cfg.batch_size // world
    weights = train_cache.colorfulness.astype(np.float64) ** cfg.color_sampling if cfg.color_sampling else None
    sampler = EpochSampler(len(train_cache), seed=cfg.seed, rank=rank, world=world, weights=weights)
    steps_per_epoch = len(sampler) // per_rank
    if steps_per_epoch == 0:
        raise DataError(f"{cfg.data}: {len(train_cache)} photos are fewer than one batch of {cfg.batch_size}")
    ab_weights = rebalance_weights(train_cache.ab_hist, 1.0 - cfg.rebalance).to(device) if cfg.rebalance else None

    # model and optimiser
    if cfg.loss not in ("mse", "classify"):
        raise ValueError(f"--loss {cfg.loss}: choose mse or classify")
    model_config = ModelConfig(num_classes=len(train_cache.classes), width=cfg.width, global_size=cfg.crop,
                               ab_bins=cfg.ab_bins if cfg.loss == "classify" else 0,
                               global_features=cfg.global_features)
    model = ColorizationNet(model_config).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if cfg.init and not (cfg.resume and last_path.exists()):
        _init_from(model, cfg.init, train_cache.classes)
    lr = cfg.lr if cfg.lr is not None else (1.0 if cfg.optimizer == "adadelta" else 1e-3)
    if cfg.optimizer == "adadelta":
        optimizer = torch.optim.Adadelta(model.parameters(), lr=lr)
    elif cfg.optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    else:
        raise ValueError(f"unknown optimizer {cfg.optimizer!r}; choose adadelta or adam")
    step, best_val, last_val, seconds = 0, math.inf, {}, 0.0
    if cfg.resume and last_path.exists():
        state = ckpt.load_checkpoint(last_path, require=ckpt.CHECKPOINT_FIELDS)
        if state["model_config"] != model_config.to_dict():
            raise ckpt.CheckpointError(f"{last_path}: checkpoint is of another model ({state['model_config']}), "
                                       f"not {model_config.to_dict()}")
        model.load_state_dict(ckpt.clean_state_dict(state["model"]))
        optimizer.load_state_dict(state["optimizer"])
        for group in optimizer.param_groups:   # the command line's learning rate wins (same value on a plain resume)
            group["lr"] = lr
        torch.set_rng_state(state["rng"])
        step, best_val, last_val = state["step"], state["best_val"], state.get("last_val", {})
        seconds = float(state.get("seconds", 0.0))
    net = model
    if world > 1:
        # the wrappers share model's parameters and buffers, so `model` stays the one to save and validate
        net = DistributedDataParallel(distributed.convert_batchnorm(model),
                                      device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        net = torch.compile(net)
    autocast = autocast_for(cfg, device)
    resident = _resident(cfg, train_cache, device)
    train_flops = 6 * count_macs(ColorizationNet(model_config), cfg.crop, cfg.crop)   # forward + backward per image
    peak = bf16_peak_flops(device)

    # logs
    writer = None
    log_file = None
    if main:
        (out / "args.json").write_text(json.dumps(asdict(cfg), indent=2))
        log_file = open(out / "log.jsonl", "a")  # noqa: SIM115 (open for the whole run; closed in `finally`)
        try:
            from torch.utils.tensorboard import SummaryWriter
            writer = SummaryWriter(str(out / "tb"))
        except ImportError:
            pass

    def log(record: dict) -> None:
        if main:
            log_file.write(json.dumps({"step": step, "time": time.time(), **record}) + "\n")
            log_file.flush()
            if writer is not None:
                for k, v in record.items():
                    if isinstance(v, (int, float)):
                        writer.add_scalar(k, v, step)

    def save(path: Path) -> None:
        if main:
            ckpt.save_checkpoint(path, {
                "model_config": model_config.to_dict(), "model": ckpt.clean_state_dict(model.state_dict()),
                "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(), "step": step,
                "epoch": step // steps_per_epoch, "batch_in_epoch": step % steps_per_epoch, "seed": cfg.seed,
                "best_val": best_val, "last_val": last_val, "seconds": seconds, "classes": train_cache.classes,
                "args": asdict(cfg)})

    stop_signal = []
    previous = {s: signal.signal(s, lambda signum, frame: stop_signal.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM)}

    from tqdm import tqdm
    bar = tqdm(total=cfg.steps, initial=step, disable=not (main and cfg.progress), unit="step", dynamic_ncols=True)
    wait_time = step_time = 0.0
    images_seen = 0
    started = time.perf_counter() - seconds       # the budget counts wall time, across resumes
    finished = progress(cfg, step, seconds) >= 1.0
    net.train()
    try:
        while not finished:
            epoch, first = divmod(step, steps_per_epoch)
            sampler.set_epoch(epoch)
            loader = _start_workers(_epoch_batches(cfg, train_cache, resident, list(sampler), per_rank, epoch,
                                                   first, device))
            t_wait = time.perf_counter()
            for l, ab, labels in loader:
                t_step = time.perf_counter()
                wait_time += t_step - t_wait
                l, ab, labels = (t.to(device, non_blocking=True) for t in (l, ab, labels))
                if cfg.channels_last:
                    l = l.contiguous(memory_format=torch.channels_last)
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(cfg, lr, progress(cfg, step, seconds))
                with autocast:
                    loss, mse, ce, _ = compute_loss(net, l, ab, labels, alpha=cfg.alpha, ab_weights=ab_weights,
                                                  ab_bins=model_config.ab_bins)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                images_seen += cfg.batch_size
                t_wait = time.perf_counter()
                step_time += t_wait - t_step
                # one collective per step: any rank's stop signal, and the slowest rank's clock
                shared = torch.tensor([float(len(stop_signal)), t_wait - started], dtype=torch.float64)
                if world > 1:
                    dist.all_reduce(shared, op=dist.ReduceOp.MAX)
                seconds = float(shared[1])
                finished = progress(cfg, step, seconds) >= 1.0
                if step % cfg.log_every == 0 or finished:
                    total = wait_time + step_time
                    rec = {"loss": float(loss.detach()), "mse": float(mse.detach()), "epoch": epoch,
                           "lr": optimizer.param_groups[0]["lr"], "seconds": seconds,
                           "images_per_s": images_seen / total, "data_wait_fraction": wait_time / total}
                    if ce is not None:
                        rec["ce"] = float(ce.detach())
                    if peak:
                        rec["mfu"] = rec["images_per_s"] * train_flops / peak
                    log(rec)
                    bar.set_postfix(loss=f"{rec['loss']:.4f}", img_s=f"{rec['images_per_s']:.1f}",
                                    wait=f"{rec['data_wait_fraction']:.0%}")
                bar.update(1)
                if val_cache is not None and (step % cfg.eval_every == 0 or finished):
                    if main:
                        last_val = validate(model, val_cache, crop=cfg.crop, device=device)
                        log(last_val)
                        tqdm.write(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in last_val.items()))
                        if last_val["val_mse"] < best_val:
                            best_val = last_val["val_mse"]
                            save(best_path)
                    if world > 1:
                        dist.barrier()
                if step % cfg.ckpt_every == 0 or finished:
                    save(last_path)
                if shared[0] > 0:
                    raise Stop
                if finished:
                    break
    except Stop:
        save(last_path)
        if main:
            tqdm.write(f"stopped at step {step}; saved {last_path} (resume with --resume)")
    finally:
        bar.close()
        for s, h in previous.items():
            signal.signal(s, h)
        if writer is not None:
            writer.close()
        if log_file is not None:
            log_file.close()
        # the DDP reducer must go before its process group, or gloo's destructor waits forever
        net = None
        distributed.teardown()
    if stop_signal:
        raise KeyboardInterrupt
    return last_val
