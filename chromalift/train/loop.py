"""Training the paper's network: MSE on normalised ab + alpha x scene cross-entropy, ADADELTA by default.

Readable top to bottom: set up (device, processes, data, model, optimiser), maybe resume, then one
loop of steps with validation, logging and checkpoints. One process or many through torchrun
(DistributedDataParallel; rank 0 logs, validates and saves). Runs resume exactly: the data order and
augmentations are functions of (seed, epoch, photo) and the checkpoint holds model, optimiser and step.
"""
from __future__ import annotations

import math
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from chromalift.color.lab import unnormalize_ab
from chromalift.inference.device import bf16_peak_flops, cpu_has_fast_bf16, pick_device
from chromalift.model.network import ColorizationNet, ModelConfig, ab_bin_centres, count_macs
from chromalift.train import checkpoint as ckpt
from chromalift.train import distributed as distributed
from chromalift.train.config import TrainConfig
from chromalift.train.data.batches import EpochSampler, sampling_weights
from chromalift.train.data.cache import Cache, DataError, rebalance_weights
from chromalift.train.data.device_batches import DeviceBatches
from chromalift.train.data.loader import cache_for, epoch_batches, resident_batches, start_workers
from chromalift.train.heap import keep_freed_memory
from chromalift.train.log import TrainLog
from chromalift.train.losses import SoftBins, compute_loss, head_bin_lookup, used_ab_bins
from chromalift.train.schedule import lr_at, progress
from chromalift.train.validation import validate


class Stop(Exception):
    pass


class Diverged(ValueError):
    """The loss went NaN or infinite; str() says at which step, in one line."""


def _saved_step(out: Path) -> str:
    try:
        return str(ckpt.load_checkpoint(out / "last.pt")["step"])
    except ckpt.CheckpointError:
        return "none saved"


def autocast_for(cfg: TrainConfig, device: torch.device):
    """bf16 autocast where the hardware has it: CUDA, or a CPU with native bf16 (else it runs far slower)."""
    enabled = cfg.amp and (device.type == "cuda" or (device.type == "cpu" and cpu_has_fast_bf16()))
    return torch.autocast(device.type if device.type in ("cuda", "cpu") else "cpu", dtype=torch.bfloat16,
                          enabled=enabled)


@dataclass
class _Run:
    """Everything a run holds between steps: what it trains on, what it trains, and how far it got."""
    train_cache: Cache
    val_cache: Cache | None
    sampler: EpochSampler
    per_rank: int
    steps_per_epoch: int
    ab_weights: torch.Tensor | None
    model: ColorizationNet
    model_config: ModelConfig
    optimizer: torch.optim.Optimizer
    lr: float
    ab_lookup: torch.Tensor | None   # a head over some ab bins: every grid bin's output index (losses.head_bin_lookup)
    ab_soft: SoftBins | None = None   # soft bin targets over the head's bins
    vivid: tuple[float, torch.Tensor] | None = None   # --colorfulness-loss: its weight, the bins' Lab centres
    step: int = 0
    best_val: float = math.inf
    last_val: dict = field(default_factory=dict)
    seconds: float = 0.0


def _prepare_run(cfg: TrainConfig, out: Path, rank: int, world: int, device: torch.device, resuming: bool) -> _Run:
    """The data (caches, sampler, rebalancing weights), the model and its optimiser, and, when resuming,
    the state of last.pt."""
    if cfg.loss not in ("mse", "classify"):
        raise ValueError(f"--loss {cfg.loss}: choose mse or classify")
    if not cfg.zoom >= 1:
        raise ValueError(f"--zoom {cfg.zoom}: 1 (off) or more")
    if not 0 < cfg.target_saturation <= 4:
        raise ValueError(f"--target-saturation {cfg.target_saturation}: a factor in (0, 4], e.g. 1.2")
    if cfg.colorfulness_loss and (cfg.loss != "classify" or not cfg.colorfulness_loss > 0):
        raise ValueError(f"--colorfulness-loss {cfg.colorfulness_loss}: a weight > 0, with --loss classify")
    if cfg.ab_soft and (cfg.loss != "classify" or not cfg.ab_soft > 0):
        raise ValueError(f"--ab-soft {cfg.ab_soft}: a sigma > 0 (Lab units), with --loss classify")
    train_cache = cache_for(cfg.data, out, "train", cfg, rank, world)
    val_cache = cache_for(cfg.val, out, "val", cfg, rank, world, classes=train_cache.classes) if cfg.val else None
    if train_cache.size < cfg.crop:
        raise DataError(f"{cfg.data}: photos are {train_cache.size} px, smaller than --crop {cfg.crop}")
    per_rank = cfg.batch_size // world
    weights = sampling_weights(train_cache, cfg.color_sampling, cfg.class_weights)
    sampler = EpochSampler(len(train_cache), seed=cfg.seed, rank=rank, world=world, weights=weights)
    steps_per_epoch = len(sampler) // per_rank
    if steps_per_epoch == 0:
        raise DataError(f"{cfg.data}: {len(train_cache)} photos are fewer than one batch of {cfg.batch_size}")
    ab_weights = rebalance_weights(train_cache.ab_hist, 1.0 - cfg.rebalance).to(device) if cfg.rebalance else None
    bins = cfg.ab_bins if cfg.loss == "classify" else 0
    keep = used_ab_bins(train_cache.images, bins, seed=cfg.seed) if bins and cfg.ab_prune else ()
    model_config = ModelConfig(num_classes=len(train_cache.classes), width=cfg.width, global_size=cfg.crop,
                               ab_bins=bins, ab_keep=keep, global_features=cfg.global_features, head_scale=cfg.head_scale)
    model = ColorizationNet(model_config).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if cfg.init and not resuming:
        ckpt.init_from(model, cfg.init, train_cache.classes, quiet=rank != 0)
    lr = cfg.lr if cfg.lr is not None else (1.0 if cfg.optimizer == "adadelta" else 1e-3)
    optimizers = {"adadelta": torch.optim.Adadelta, "adam": torch.optim.Adam}
    if cfg.optimizer not in optimizers:
        raise ValueError(f"unknown optimizer {cfg.optimizer!r}; choose adadelta or adam")
    lookup = head_bin_lookup(bins, keep)
    run = _Run(train_cache, val_cache, sampler, per_rank, steps_per_epoch, ab_weights, model, model_config,
               optimizers[cfg.optimizer](model.parameters(), lr=lr), lr, None if lookup is None else lookup.to(device))
    centres = unnormalize_ab(ab_bin_centres(model_config)).T.contiguous() if bins else None   # (Q, 2) Lab units
    if cfg.ab_soft:
        run.ab_soft = SoftBins(centres, cfg.ab_soft).to(device)
    if cfg.colorfulness_loss:
        run.vivid = (cfg.colorfulness_loss, centres.to(device))
    if resuming:
        _restore(run, Path(cfg.out) / "last.pt")
    return run


def _restore(run: _Run, path: Path) -> None:
    state = ckpt.load_checkpoint(path, require=ckpt.CHECKPOINT_FIELDS)
    if ckpt.config_from(state["model_config"], path) != run.model_config:   # a setting added since: its default
        raise ckpt.CheckpointError(f"{path}: checkpoint is of another model ({state['model_config']}), "
                                   f"not {run.model_config.to_dict()}")
    run.model.load_state_dict(ckpt.clean_state_dict(state["model"]))
    run.optimizer.load_state_dict(state["optimizer"])
    for group in run.optimizer.param_groups:   # the command line's learning rate wins (same value on a plain resume)
        group["lr"] = run.lr
    torch.set_rng_state(state["rng"])
    run.step, run.best_val, run.last_val = state["step"], state["best_val"], state.get("last_val", {})
    run.seconds = float(state.get("seconds", 0.0))


def _save(run: _Run, cfg: TrainConfig, path: Path) -> None:
    ckpt.save_checkpoint(path, {
        "model_config": run.model_config.to_dict(), "model": ckpt.clean_state_dict(run.model.state_dict()),
        "optimizer": run.optimizer.state_dict(), "rng": torch.get_rng_state(), "step": run.step,
        "epoch": run.step // run.steps_per_epoch, "batch_in_epoch": run.step % run.steps_per_epoch, "seed": cfg.seed,
        "best_val": run.best_val, "last_val": run.last_val, "seconds": run.seconds,
        "classes": run.train_cache.classes, "args": asdict(cfg)})


def _wrap(model: ColorizationNet, cfg: TrainConfig, world: int, device: torch.device):
    """The module the steps run through: DDP over the processes (the wrappers share `model`'s parameters
    and buffers, so `model` stays the one to save and validate), compiled if asked."""
    net = model
    if world > 1:
        net = DistributedDataParallel(distributed.convert_batchnorm(model),
                                      device_ids=[device.index] if device.type == "cuda" else None)
    return torch.compile(net) if cfg.compile else net


def _step(run: _Run, net, cfg: TrainConfig, batch, device: torch.device, autocast):
    """One optimisation step on one batch, the learning rate set for how far the run is; -> (loss, colour
    loss, scene loss or None)."""
    l, ab, labels = (t.to(device, non_blocking=True) for t in batch)
    if cfg.channels_last:
        l = l.contiguous(memory_format=torch.channels_last)
    for group in run.optimizer.param_groups:
        group["lr"] = lr_at(cfg, run.lr, progress(cfg, run.step, run.seconds))
    with autocast:
        loss, color, scene, _ = compute_loss(net, l, ab, labels, alpha=cfg.alpha, ab_weights=run.ab_weights,
                                             ab_bins=run.model_config.ab_bins, ab_lookup=run.ab_lookup,
                                             ab_soft=run.ab_soft, saturation=cfg.target_saturation, vivid=run.vivid)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    run.step += 1
    return loss, color, scene


def _record(run: _Run, losses, epoch: int, images: int, wait: float, busy: float, flops_per_image: float,
            peak: float | None) -> dict:
    loss, color, scene = losses      # colour: MSE of ab, or the cross-entropy over ab bins
    rec = {"loss": float(loss.detach()), "color_loss": float(color.detach()), "epoch": epoch,
           "lr": run.optimizer.param_groups[0]["lr"], "seconds": run.seconds,
           "images_per_s": images / (wait + busy), "data_wait_fraction": wait / (wait + busy)}
    if scene is not None:
        rec["scene_loss"] = float(scene.detach())
    if peak:
        rec["mfu"] = rec["images_per_s"] * flops_per_image / peak
    return rec


def _validate(run: _Run, cfg: TrainConfig, device: torch.device, log: TrainLog, main: bool, world: int,
              best_path: Path) -> None:
    from tqdm import tqdm


    if main:
        run.last_val = validate(run.model, run.val_cache, crop=cfg.crop, device=device)
        log(run.step, run.last_val)
        tqdm.write(f"step {run.step}: " + ", ".join(f"{k} {v:.4f}" for k, v in run.last_val.items()))
        if run.last_val["val_mse"] < run.best_val:
            run.best_val = run.last_val["val_mse"]
            _save(run, cfg, best_path)
    if world > 1:
        dist.barrier()


def _setup(cfg: TrainConfig) -> tuple[int, int, torch.device, Path]:
    """Processes, device and run folder: -> (rank, world, device, out). A folder with a run in it is refused
    unless resuming."""
    rank, world, local_rank = distributed.setup()
    device = pick_device(cfg.device, local_rank=local_rank)
    if device.type == "cpu":
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        keep_freed_memory()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True    # fixed shapes: let cuDNN pick the fastest convolutions
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "last.pt").exists() and not cfg.resume:
        raise ckpt.CheckpointError(f"{out}: holds a run already (last.pt); pass --resume to continue it or choose another --out")
    if cfg.batch_size % world:
        raise DataError(f"batch size {cfg.batch_size} does not split evenly over {world} processes")
    return rank, world, device, out


@dataclass
class _Loop:
    """What the step loop needs beside the run: where it runs, what it reports to, and its clocks."""
    net: torch.nn.Module
    autocast: object
    resident: DeviceBatches | None
    device: torch.device
    world: int
    main: bool
    out: Path
    log: TrainLog
    bar: object
    stop_signal: list
    started: float                   # perf_counter at step 0: the budget counts wall time, across resumes
    flops_per_image: float
    peak: float | None
    wait: float = 0.0
    busy: float = 0.0
    images: int = 0

    def save(self, run: _Run, cfg: TrainConfig, name: str) -> None:
        if self.main:
            _save(run, cfg, self.out / name)


def _after_step(run: _Run, loop: _Loop, cfg: TrainConfig, losses, epoch: int, t_step: float) -> bool:
    """Clocks, log, validation and checkpoint after one step; -> whether the run is finished. Raises Stop
    when any process got a stop signal (after saving)."""
    t_done = time.perf_counter()
    loop.busy += t_done - t_step
    loop.images += cfg.batch_size
    # one collective per step: any rank's stop signal, and the slowest rank's clock
    shared = torch.tensor([float(len(loop.stop_signal)), t_done - loop.started], dtype=torch.float64)
    if loop.world > 1:
        dist.all_reduce(shared, op=dist.ReduceOp.MAX)
    run.seconds = float(shared[1])
    finished = progress(cfg, run.step, run.seconds) >= 1.0
    checked = run.step % cfg.log_every == 0 or run.step % cfg.ckpt_every == 0 or finished
    if checked and not math.isfinite(loss := float(losses[0].detach())):   # before a log line or a checkpoint holds it
        raise Diverged(f"step {run.step}: the loss is {loss}: training diverged; "
                       f"last.pt keeps the last finite state (step {_saved_step(loop.out)}): resume with a lower --lr")
    if run.step % cfg.log_every == 0 or finished:
        rec = _record(run, losses, epoch, loop.images, loop.wait, loop.busy, loop.flops_per_image, loop.peak)
        loop.log(run.step, rec)
        loop.bar.set_postfix(loss=f"{rec['loss']:.4f}", img_s=f"{rec['images_per_s']:.1f}",
                             wait=f"{rec['data_wait_fraction']:.0%}")
    loop.bar.update(1)
    if run.val_cache is not None and (run.step % cfg.eval_every == 0 or finished):
        _validate(run, cfg, loop.device, loop.log, loop.main, loop.world, loop.out / "best.pt")
    if run.step % cfg.ckpt_every == 0 or finished:
        loop.save(run, cfg, "last.pt")
    if shared[0] > 0:
        raise Stop
    return finished


def _steps(run: _Run, loop: _Loop, cfg: TrainConfig) -> None:
    """Epochs of steps until the budget (steps or minutes) is spent."""
    finished = progress(cfg, run.step, run.seconds) >= 1.0
    while not finished:
        epoch, first = divmod(run.step, run.steps_per_epoch)
        run.sampler.set_epoch(epoch)
        batches = epoch_batches(cfg, run.train_cache, loop.resident, list(run.sampler), run.per_rank, epoch, first,
                                 loop.device)
        t_wait = time.perf_counter()
        for batch in start_workers(batches):
            t_step = time.perf_counter()
            loop.wait += t_step - t_wait
            losses = _step(run, loop.net, cfg, batch, loop.device, loop.autocast)
            finished = _after_step(run, loop, cfg, losses, epoch, t_step)
            if finished:
                break
            t_wait = time.perf_counter()


def train(cfg: TrainConfig) -> dict:
    """Run (or resume) training as configured; returns the last validation metrics."""
    from tqdm import tqdm

    from chromalift.progress import bar as progress_bar

    rank, world, device, out = _setup(cfg)
    main = rank == 0
    torch.manual_seed(cfg.seed)
    run = _prepare_run(cfg, out, rank, world, device, resuming=cfg.resume and (out / "last.pt").exists())
    stop_signal = []
    previous = {s: signal.signal(s, lambda signum, frame: stop_signal.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM)}
    loop = _Loop(
        net=_wrap(run.model, cfg, world, device), autocast=autocast_for(cfg, device),
        resident=resident_batches(cfg, run.train_cache, device), device=device, world=world, main=main, out=out,
        log=TrainLog(out, cfg, main), stop_signal=stop_signal, started=time.perf_counter() - run.seconds,
        bar=progress_bar(total=cfg.steps, initial=run.step, disable=not (main and cfg.progress), unit="step",
                 dynamic_ncols=True),
        flops_per_image=6 * count_macs(ColorizationNet(run.model_config), cfg.crop, cfg.crop, training=True),  # fwd + bwd
        peak=bf16_peak_flops(device))
    loop.net.train()
    try:
        _steps(run, loop, cfg)
    except Stop:
        loop.save(run, cfg, "last.pt")
        if main:
            tqdm.write(f"stopped at step {run.step}; saved {out / 'last.pt'} (resume with --resume)")
    finally:
        loop.bar.close()
        for s, h in previous.items():
            signal.signal(s, h)
        loop.log.close()
        # the DDP reducer must go before its process group, or gloo's destructor waits forever
        loop.net = None
        distributed.teardown()
    if stop_signal:
        raise KeyboardInterrupt
    return run.last_val
