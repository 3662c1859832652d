"""How fast `colorize train` trains against what the machine can do, in one run, for the MSE and the bin recipe.

    python benchmarks/train_speed.py --data CACHE [--width 0.5 --crop 128 --batch-size 32 --steps 24]
                                     [--repeats 3] [--before DIR ...] [--fp32]

For each recipe (MSE: --loss mse; bins: --loss classify --ab-prune --ab-soft 5; bins-quarter: the same with
--head-scale 4; all --zoom 2.5 --alpha 3):
- capacity: one 1-thread trainer per core (--threads 1 --workers 0) side by side, images/s summed;
- bare step: the same, with random batches and targets instead of the trainer (the network, its loss and
  Adam alone); and once more in one process with the trainer's default threads, which shows what intra-op
  threads lose against one process per core;
- trainer: `colorize train` as a user runs it (default workers and threads); with --before DIR, also the
  trainer of another checkout (e.g. `git worktree add /tmp/before OLD`; its own code, whatever is installed;
  --before may be given more than once), so before/after compare in one run;
- capacity and the trainers are measured --repeats times, interleaved (capacity, trainers, capacity, ...),
  so that a shared machine's slow minutes fall on all of them: the rows give medians, and the ratio's
  range over the repeats (each trainer against the capacity measured beside it);
- the ratio trainer / capacity, the training MFU (FLOP per image-step x images/s over the CPU's nominal
  peak for the precision the step runs in, from its flags and measured clock: ceiling.peak_gflops), and where a default
  step's time goes (timers around batch, forward, loss, backward and optimiser).
Each measurement runs in its own process; images/s leave out the first steps (start-up and warm-up).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPES = {"mse": {"loss": "mse"}, "bins": {"loss": "classify", "ab_prune": True, "ab_soft": 5.0},
           "bins-quarter": {"loss": "classify", "ab_prune": True, "ab_soft": 5.0, "head_scale": 4}}
# `python -c BOOT CHECKOUT train ...` runs the colorize command of CHECKOUT: an editable install's import
# finder would otherwise win over PYTHONPATH and time this checkout's code under another name
BOOT = ("import runpy, sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in "
        "getattr(f, '__module__', '') + repr(f)]; sys.path.insert(0, sys.argv.pop(1)); sys.argv[0] = 'colorize'; "
        "runpy.run_module('chromalift', run_name='__main__', alter_sys=True)")
HERE = str(Path(__file__).resolve().parents[1])
WARM = 4   # steps left out of every images/s


def _config(args, recipe: str, out: str, **over):
    from chromalift.train.config import TrainConfig
    return TrainConfig(data=args.data, out=out, width=args.width, crop=args.crop, batch_size=args.batch_size,
                       steps=args.steps, zoom=2.5, alpha=3.0, optimizer="adam", lr=1e-4, log_every=WARM,
                       ckpt_every=10 ** 9, progress=False, amp=not args.fp32, **RECIPES[recipe], **over)


def trainers(args, recipe: str, over: dict, copies: int = 1, checkout: str = HERE, torchrun: int = 0) -> list[float]:
    """`colorize train` of `checkout` (this one, or --before's), `copies` processes side by side (or one run of
    `torchrun` processes), as a user runs it plus the recipe and `over`; -> each one's images/s after the
    first WARM steps."""
    flags = {"width": args.width, "crop": args.crop, "batch_size": args.batch_size, "steps": args.steps,
             "zoom": 2.5, "alpha": 3.0, "optimizer": "adam", "lr": 1e-4, "log_every": WARM, "ckpt_every": 10 ** 9,
             "progress": False, "amp": not args.fp32, **RECIPES[recipe], **over}
    argv = []
    for key, value in flags.items():
        flag = "--" + key.replace("_", "-")
        argv += ([flag] if value is True else [f"--no-{flag[2:]}"] if value is False else [flag, str(value)])
    with tempfile.TemporaryDirectory() as tmp:
        outs = [Path(tmp) / f"run{i}" for i in range(copies)]
        launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={torchrun}",
                   "-m", "chromalift"] if torchrun else [sys.executable, "-c", BOOT, checkout])
        procs = [subprocess.Popen([*launch, "train", "--data", args.data, "--out", str(o), *argv],
                                  stdout=subprocess.DEVNULL) for o in outs]
        if any(p.wait() for p in procs):
            raise SystemExit(f"trainer {recipe} {over} of {checkout}: failed")
        rates = []
        for o in outs:
            steps = [r for r in map(json.loads, (o / "log.jsonl").read_text().splitlines()) if "seconds" in r]
            first, last = steps[0], steps[-1]
            rates.append((last["step"] - first["step"]) * args.batch_size / (last["seconds"] - first["seconds"]))
    return rates


def child_bare(args, recipe: str, over: dict) -> dict:
    """The network, its loss and Adam on random batches: what a step costs with no data to make."""
    import torch

    from chromalift.train.heap import keep_freed_memory
    from chromalift.train.loop import _prepare_run, autocast_for
    with tempfile.TemporaryDirectory() as out:
        cfg = _config(args, recipe, out, **over)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        keep_freed_memory()   # as the trainer does
        run = _prepare_run(cfg, Path(out), 0, 1, torch.device("cpu"), resuming=False)
    b, c = args.batch_size, args.crop
    l = torch.rand(b, 1, c, c).to(memory_format=torch.channels_last)
    ab, labels = torch.rand(b, 2, c // 2, c // 2) * 160 - 80, torch.randint(0, len(run.train_cache.classes), (b,))
    timer = _Phases()
    for i in range(args.steps):
        _timed_step(run, cfg, (l, ab, labels), timer if i >= WARM else _Phases(), autocast_for(cfg, torch.device("cpu")))
    from chromalift.model.network import ColorizationNet, count_macs
    flops = 6 * count_macs(ColorizationNet(run.model_config), c, c, training=True)   # forward + backward
    return {"images_per_s": (args.steps - WARM) * b / timer.total(), "flops": flops}


class _Phases(dict):
    def add(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self[name] = self.get(name, 0.0) + now - since
        return now

    def total(self) -> float:
        return sum(self.values())


def _timed_step(run, cfg, batch, timer: _Phases, autocast) -> None:
    import torch

    from chromalift.train.losses import compute_loss
    t = time.perf_counter()
    l, ab, labels = batch
    l = l.contiguous(memory_format=torch.channels_last)
    with autocast:
        outputs = run.model(l)
        t = timer.add("forward", t)
        loss = compute_loss(lambda _: outputs, l, ab, labels, alpha=cfg.alpha, ab_weights=None,
                            ab_bins=run.model_config.ab_bins, ab_lookup=run.ab_lookup, ab_soft=run.ab_soft)[0]
        t = timer.add("loss", t)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    t = timer.add("backward", t)
    run.optimizer.step()
    timer.add("optimiser", t)


def child_profile(args, recipe: str, over: dict) -> dict:
    """A default step's time by phase, with the trainer's own batches."""
    import torch

    from chromalift.train.data.loader import epoch_batches, start_workers
    from chromalift.train.heap import keep_freed_memory
    from chromalift.train.loop import _prepare_run, autocast_for
    with tempfile.TemporaryDirectory() as out:
        cfg = _config(args, recipe, out, **over)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        keep_freed_memory()
        run = _prepare_run(cfg, Path(out), 0, 1, torch.device("cpu"), resuming=False)
    run.sampler.set_epoch(0)
    batches = start_workers(epoch_batches(cfg, run.train_cache, None, list(run.sampler), run.per_rank, 0, 0,
                                          torch.device("cpu")))
    timer = _Phases()
    for i in range(args.steps):
        phases = timer if i >= WARM else _Phases()
        t = time.perf_counter()
        batch = next(batches)
        phases.add("batch", t)
        _timed_step(run, cfg, batch, phases, autocast_for(cfg, torch.device("cpu")))
    return {k: v / (args.steps - WARM) for k, v in timer.items()}


def _spawn(args, kind: str, recipe: str, over: dict, copies: int = 1) -> list[dict]:
    """`copies` child processes of this script side by side, each measuring `kind`; -> their results."""
    cmd = [sys.executable, __file__, "--child", kind, "--recipe", recipe, "--over", json.dumps(over),
           "--data", args.data, "--width", str(args.width), "--crop", str(args.crop),
           "--batch-size", str(args.batch_size), "--steps", str(args.steps), *(["--fp32"] if args.fp32 else [])]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(copies)]
    results = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"{kind} {recipe} {over}: child failed ({p.returncode})")
        results += [r for r in map(json.loads, (x for x in out.splitlines() if x.startswith("{"))) if r]
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="prepared cache (colorize prepare) or pack")
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=24)
    p.add_argument("--recipes", default="mse,bins")
    p.add_argument("--repeats", type=int, default=3, help="interleaved measurements of capacity and trainers")
    p.add_argument("--before", action="append", default=[],
                   help="a checkout of an earlier chromalift whose trainer to time alongside (repeatable)")
    p.add_argument("--fp32", action="store_true", help="every run without bf16 autocast (--no-amp), as on a CPU "
                                                       "without fast bf16 (AVX2 only)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--recipe", help=argparse.SUPPRESS)
    p.add_argument("--over", default="{}", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        kinds = {"bare": child_bare, "profile": child_profile}
        print(json.dumps(kinds[args.child](args, args.recipe, json.loads(args.over))))
        return
    report(args)


def report(args) -> None:
    from ceiling import peak_gflops

    from chromalift.inference.device import cpu_has_fast_bf16
    cores = len(os.sched_getaffinity(0))
    bf16 = cpu_has_fast_bf16() and not args.fp32
    peak, assumed = peak_gflops(cores, bf16=bf16)
    peak *= 1e9
    print(f"{cores} cores, {'bf16 autocast' if bf16 else 'fp32'}; nominal peak {peak / 1e9:.0f} GFLOP/s ({assumed})\n")
    one = {"threads": 1, "workers": 0}
    for recipe in args.recipes.split(","):
        bares = _spawn(args, "bare", recipe, one, cores)
        bare, flops = sum(r["images_per_s"] for r in bares), bares[0]["flops"]
        shared = _spawn(args, "bare", recipe, {})[0]["images_per_s"]   # what threads lose against processes
        befores = [] if "head_scale" in RECIPES[recipe] else args.before
        named = [(f"trainer before ({Path(b).name})", b) for b in befores] + [("**trainer now** (defaults)", HERE)]
        capacities, rates = [], {name: [] for name, _ in named}
        for _ in range(args.repeats):
            capacities.append(sum(trainers(args, recipe, one, cores)))
            for name, checkout in named:
                rates[name].append(trainers(args, recipe, {}, 1, checkout)[0])
        capacity = statistics.median(capacities)
        ddp = trainers(args, recipe, one, torchrun=cores)[0]
        print(f"{recipe}: {flops / 1e9:.2f} GFLOP per image-step (forward + backward); "
              f"capacity over {args.repeats} repeats: " + ", ".join(f"{c:.1f}" for c in capacities) + "\n")
        print(f"| {recipe} | images/s (median) | of capacity | range over repeats | MFU |\n|---|---|---|---|---|")
        print(f"| capacity: 1-thread trainers, one per core | {capacity:.1f} | 1.00 | | {capacity * flops / peak:.1%} |")
        print(f"| bare step, one per core | {bare:.1f} | {bare / capacity:.2f} | | {bare * flops / peak:.1%} |")
        print(f"| bare step, one process with the trainer's threads | {shared:.1f} | {shared / capacity:.2f} | | "
              f"{shared * flops / peak:.1%} |")
        for name, got in rates.items():
            ratios = [r / c for r, c in zip(got, capacities)]
            rate = statistics.median(got)
            print(f"| {name} | {rate:.1f} | {rate / capacity:.2f} | {min(ratios):.2f}-{max(ratios):.2f} | "
                  f"{rate * flops / peak:.1%} |")
        print(f"| torchrun: one 1-thread trainer per core, one batch | {ddp:.1f} | {ddp / capacity:.2f} | | "
              f"{ddp * flops / peak:.1%} |")
        phases = _spawn(args, "profile", recipe, {})[0]
        total = sum(phases.values())
        print(f"\ntrainer's step, {total:.3f} s: " + ", ".join(f"{k} {v / total:.0%}" for k, v in phases.items()) + "\n")


if __name__ == "__main__":
    main()
