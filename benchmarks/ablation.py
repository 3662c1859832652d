"""The colour issue's comparison at equal image-steps: the paper's MSE, rebalanced MSE, classification
over a*b* bins decoded by the annealed mean (Zhang et al. 2016), and the paper's two ablations (no global
features; no scene classification loss).

    python benchmarks/ablation.py --data cache/mp-train --val cache/mp-val --eval ../shared/data/miniplaces/val \
        --out runs/ablation --steps 1500 --parallel 2

Every variant trains from scratch with the same seed, data order, schedule and number of image-steps
(`colorize train ... --resume`, so a stopped comparison continues where it was, and finished runs are
kept), `--parallel` runs at a time with the machine's cores split between them. The bin head's steps cost
more (benchmarks/loss_speed.py); the table gives each run's images/s. Each run is then measured on `--eval`
photos (an evenly spaced `--limit`) with the colour targets of `colorize evaluate`, at gain 1 (no
calibration), with a grid grey | ours | truth of six of them (NAME.png). "no-global" has no global network
at all, as in the paper (the fusion sees zeros and no scene loss reaches the shared layers). Prints one
markdown table; writes results.json beside the runs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

VARIANTS = {                                  # name -> the flags that differ from the paper's recipe
    "mse": [],                                # the paper: MSE on a*b* + 1/300 scene cross-entropy
    "rebalance": ["--rebalance", "0.3"],      # MSE weighted towards rare, saturated colours
    "classify": ["--loss", "classify"],       # cross-entropy over 22 x 22 a*b* bins, annealed mean
    "classify-scene3": ["--loss", "classify", "--alpha", "3"],   # the scene loss at the bin loss's scale
    "no-global": ["--no-global-features", "--alpha", "0"],   # the paper's ablation: no global network
    "no-class-loss": ["--alpha", "0"],        # the paper's ablation: global features without scene labels
}


def run_dir(args: argparse.Namespace, name: str) -> Path:
    return Path(args.out) / (name if args.seed == 0 else f"{name}-seed{args.seed}")


def train_command(args: argparse.Namespace, name: str, threads: int) -> list[str]:
    return [sys.executable, "-m", "chromalift", "train", "--data", args.data, "--val", args.val,
            "--out", str(run_dir(args, name)), "--seed", str(args.seed), "--width", str(args.width),
            "--crop", str(args.crop), "--batch-size", str(args.batch_size), "--steps", str(args.steps),
            "--schedule", "cosine", "--warmup", "0.05", "--final-lr", "0.05", "--optimizer", "adam", "--lr", str(args.lr),
            "--eval-every", str(args.steps), "--workers", "0", "--threads", str(threads), "--amp",
            "--no-progress", "--resume", *VARIANTS[name]]


def finished(run: Path, steps: int) -> bool:
    log = run / "log.jsonl"
    if not log.exists():
        return False
    return any(json.loads(line).get("step", 0) >= steps and "val_psnr" in line for line in log.read_text().splitlines())


def train_all(args: argparse.Namespace, names: list[str]) -> None:
    todo = [n for n in names if not finished(run_dir(args, n), args.steps)]
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.parallel)

    def one(name: str) -> None:
        with open(run_dir(args, name).with_suffix(".log"), "a") as log:
            subprocess.run(train_command(args, name, threads), stdout=log, stderr=subprocess.STDOUT, check=True)
        print(f"trained {name}", flush=True)

    with ThreadPoolExecutor(args.parallel) as pool:
        list(pool.map(one, todo))


def measure(args: argparse.Namespace, name: str) -> dict:
    import torch

    from chromalift.evaluation.evaluate import evaluate
    from chromalift.inference.colorizer import Colorizer
    from chromalift.train.checkpoint import model_from_checkpoint

    run = run_dir(args, name)
    model, classes, info = model_from_checkpoint(run / "last.pt")
    colorizer = Colorizer(model, torch.device("cpu"), classes)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    speed = [r["images_per_s"] for r in log if "images_per_s" in r]
    trained_classifier = json.loads((run / "args.json").read_text())["alpha"] > 0
    r = evaluate(colorizer, args.eval, limit=args.limit, progress=False, grid=run.with_suffix(".png"))
    o, g = r["ours"], r["grey"]
    return {"name": run.name, "flags": VARIANTS[name], "seed": args.seed,
            "image_steps": info["step"] * args.batch_size,
            "images_per_s": speed[-1] if speed else None, "psnr_over_grey": o["psnr"] - g["psnr"],
            "cf_over_truth": o["colorfulness"] / r["colorfulness_truth"], "hue_agreement": o["hue_agreement"],
            "vegetation_green": o["vegetation_green"], "sky_blue": o["sky_blue"],
            "neutral_chroma": o["neutral_chroma"], "top1": o.get("top1") if trained_classifier else None}


def measured(args: argparse.Namespace, name: str) -> dict:
    """measure(), kept beside the run (NAME.json) and reused while the run and the photos are the same."""
    path = run_dir(args, name).with_suffix(".json")
    key = {"eval": str(Path(args.eval).resolve()), "limit": args.limit,
           "checkpoint_mtime_ns": (run_dir(args, name) / "last.pt").stat().st_mtime_ns}
    if path.exists() and (old := json.loads(path.read_text())).get("key") == key:
        return old["row"]
    row = measure(args, name)
    path.write_text(json.dumps({"key": key, "row": row}, indent=2))
    return row


def table(rows: list[dict]) -> str:
    lines = ["| variant | flags | image-steps | train images/s | PSNR - grey | CF / truth | hue agreement "
             "| vegetation -> green | sky -> blue | chroma on grey truth | top-1 |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        top1 = "-" if r["top1"] is None else f"{r['top1']:.1%}"
        speed = "-" if r["images_per_s"] is None else f"{r['images_per_s']:.1f}"
        lines.append(f"| {r['name']} | `{' '.join(r['flags']) or '(the paper)'}` | {r['image_steps']:,} | {speed} | "
                     f"{r['psnr_over_grey']:+.2f} | {r['cf_over_truth']:.2f} | {r['hue_agreement']:.1%} | "
                     f"{r['vegetation_green']:.1%} | {r['sky_blue']:.1%} | {r['neutral_chroma']:.1f} | {top1} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="training cache or photo folder")
    p.add_argument("--val", required=True, help="validation cache or folder (validated at the end of each run)")
    p.add_argument("--eval", required=True, help="validation photos to measure the colour targets on")
    p.add_argument("--out", required=True, help="folder for the runs and results.json")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=0, help="seed of every run (not 0: runs in NAME-seedN, to see "
                   "how far two seeds of one recipe differ)")
    p.add_argument("--parallel", type=int, default=2, help="runs at a time (the cores are split between them)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads per run (0: the cores / --parallel)")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--measure", action=argparse.BooleanOptionalAction, default=True,
                   help="measure after training (--no-measure: train only, e.g. to share the machine)")
    args = p.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    train_all(args, args.variants)
    if not args.measure:
        return
    rows = [measured(args, name) for name in args.variants]
    results = Path(args.out) / ("results.json" if args.seed == 0 else f"results-seed{args.seed}.json")
    results.write_text(json.dumps(rows, indent=2))
    print(table(rows))


if __name__ == "__main__":
    main()
