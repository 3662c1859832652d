"""One command for a short, fixed GPU window (a rented instance, a cluster slot): check the GPU, run a
smoke step, train to a time budget, evaluate on the validation pack, and leave fp16 weights in parts
small enough to download plus a JSON summary, which it also prints.

    python -m chromalift.train.gpu_window --train mp.npz --val mp-val.npz --out "$OUT" --minutes 7
    colorize join OUT/ weights.safetensors          # back home: parts -> one checksummed weights file

Needs only torch, numpy, Pillow, safetensors and tqdm (no kornia, PyAV or scikit-image), run from the
repository root without installing. The run folder (checkpoints, caches) lives outside --out, which
receives at most 8 files: the parts, manifest.json, summary.json and the training log.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch

PART_BYTES = 15 * 2**20          # each part below the 16 MiB a window lets come back
MANIFEST = "manifest.json"
MAX_PARTS = 5                    # + manifest, summary and training log = the 8 files a window returns


class WindowError(Exception):
    """The window cannot run as asked; str() says why in one line."""


def check_device(device: str) -> dict:
    """What the machine offers; WindowError when the device asked for is not there."""
    info = {"torch": torch.__version__, "python": sys.version.split()[0], "cuda": torch.cuda.is_available()}
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise WindowError(f"--device {device}: no CUDA device here (torch {torch.__version__})")
        props = torch.cuda.get_device_properties(0)
        info |= {"gpu": props.name, "gpu_memory_gib": round(props.total_memory / 2**30, 1),
                 "bf16": torch.cuda.is_bf16_supported()}
    return info


def _config(args, out: str, **changes):
    from chromalift.train.config import TrainConfig
    cfg = {name: getattr(args, name) for name in WINDOW_SETTINGS} | {
        "data": args.train, "out": out, "schedule": "cosine", "optimizer": "adam",
        "eval_every": args.eval_every or 10**9, "progress": False}
    return TrainConfig(**(cfg | changes))


def smoke(args, work: Path) -> dict:
    """A short training run on a throwaway model: the whole path works, the loss is finite; images/s."""
    from chromalift.train.loop import train
    run = work / "smoke"
    train(_config(args, str(run), val=None, steps=10**9, minutes=args.smoke_seconds / 60.0, init=None,
                  ckpt_every=10**9, log_every=5))
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    losses = [r for r in records if "loss" in r]
    if not losses or not all(math.isfinite(r["loss"]) for r in losses):
        raise WindowError("smoke step: the loss is not finite; not training")
    shutil.rmtree(run, ignore_errors=True)
    return {"steps": losses[-1]["step"], "images_per_s": losses[-1]["images_per_s"], "loss": losses[-1]["loss"]}


def split_weights(weights: Path, out: Path, part_bytes: int = PART_BYTES) -> dict:
    """Cut a weights file into parts of at most part_bytes; the manifest holds every part's SHA-256."""
    data = weights.read_bytes()
    if math.ceil(len(data) / part_bytes) > MAX_PARTS:
        raise WindowError(f"{weights}: {len(data) / 2**20:.1f} MiB does not fit in {MAX_PARTS} parts of "
                          f"{part_bytes / 2**20:.1f} MiB (a window returns at most 8 files)")
    parts = []
    for i in range(0, max(len(data), 1), part_bytes):
        name = f"{weights.name}.part{i // part_bytes:02d}"
        chunk = data[i:i + part_bytes]
        (out / name).write_bytes(chunk)
        parts.append({"name": name, "bytes": len(chunk), "sha256": hashlib.sha256(chunk).hexdigest()})
    manifest = {"file": weights.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "parts": parts}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


MAX_JOINED_BYTES = 4 * 2**30     # far above any weights file (ours: 12.6 MB); a forged manifest cannot ask for more


def read_manifest(path: Path) -> dict:
    """A parts manifest, every field checked for type and range; WindowError in one line otherwise."""
    def bad(why: str) -> WindowError:
        return WindowError(f"{path}: not a parts manifest ({why})")
    try:
        if path.stat().st_size > 2**20:
            raise bad("larger than 1 MiB")
        manifest = json.loads(path.read_text())
    except OSError as e:
        raise WindowError(f"{path}: cannot read it ({e.strerror or e})") from None
    except (ValueError, RecursionError) as e:
        raise bad(f"not JSON: {str(e)[:80]}") from None
    is_hash = lambda v: isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v)
    is_size = lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_JOINED_BYTES
    if not isinstance(manifest, dict) or not is_hash(manifest.get("sha256")) or not is_size(manifest.get("bytes")):
        raise bad("it needs sha256 and bytes for the whole file")
    parts = manifest.get("parts")
    if not isinstance(parts, list) or not 0 < len(parts) <= 1000:
        raise bad("parts must be a list of 1 to 1000 entries")
    for part in parts:
        if not (isinstance(part, dict) and isinstance(part.get("name"), str) and is_hash(part.get("sha256"))
                and is_size(part.get("bytes"))):
            raise bad("each part needs a name, sha256 and bytes")
    if sum(part["bytes"] for part in parts) != manifest["bytes"]:
        raise bad("the parts' sizes do not add up to the file's")
    return manifest


def join_parts(folder: str | Path, dst: str | Path, *, overwrite: bool = False) -> Path:
    """Reassemble the parts listed in folder/manifest.json into dst, every checksum verified, then check
    that the result loads as chromalift weights. Nothing is written unless all of it is right."""
    from chromalift.io.atomic import already_exists, atomic_write
    from chromalift.model.weights import CheckpointError, load_weights

    folder, dst = Path(folder), Path(dst)
    manifest = read_manifest(folder / MANIFEST)
    if dst.exists() and not overwrite:
        raise WindowError(already_exists(dst))
    chunks = []
    for part in manifest["parts"]:
        path = folder / Path(part["name"]).name
        if not path.is_file():
            raise WindowError(f"{path}: part missing")
        if path.stat().st_size != part["bytes"]:     # checked before reading: a huge file is never read
            raise WindowError(f"{path}: {path.stat().st_size} bytes, the manifest says {part['bytes']} "
                              "(damaged or incomplete download)")
        chunk = path.read_bytes()
        if hashlib.sha256(chunk).hexdigest() != part["sha256"]:
            raise WindowError(f"{path}: checksum mismatch (damaged or incomplete download)")
        chunks.append(chunk)
    data = b"".join(chunks)
    if hashlib.sha256(data).hexdigest() != manifest["sha256"]:
        raise WindowError(f"{folder}: the joined file's checksum does not match the manifest")
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "joined.safetensors"
        probe.write_bytes(data)
        try:
            load_weights(probe)
        except CheckpointError as e:
            raise WindowError(f"{folder}: the joined weights do not load ({e})") from None
    atomic_write(dst, lambda tmp: Path(tmp).write_bytes(data))
    return dst


def _choose_checkpoint(args, run: Path, records: list[dict], summary: dict) -> Path:
    """The last weights; with --eval-every, those of the best validation (lowest a*b* MSE), which guards a
    run that goes over a small pack hundreds of times against ending overfitted. The summary says which."""
    vals = [r for r in records if "val_mse" in r]
    summary["val_curve"] = [{k: r[k] for k in ("step", "val_mse", "val_psnr", "val_colorfulness", "val_top1") if k in r}
                            for r in vals]
    if args.eval_every and vals and (run / "best.pt").exists():
        best = min(vals, key=lambda r: r["val_mse"])
        summary["val"] = {k: v for k, v in best.items() if k.startswith("val_")}
        summary["weights_from"] = f"best validation (step {best['step']})"
        return run / "best.pt"
    summary["weights_from"] = "last step"
    return run / "last.pt"


def run_window(args) -> dict:
    """The whole window; returns (and writes to --out) the summary."""
    from chromalift.model.weights import save_weights
    from chromalift.train.checkpoint import model_from_checkpoint
    from chromalift.train.data.pack import is_pack, read_pack_meta
    from chromalift.train.loop import train

    t0 = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "device": check_device(args.device)}
    print(f"window: {json.dumps(summary['device'])}", flush=True)
    with tempfile.TemporaryDirectory(prefix="colorize-window-") as tmp:
        work = Path(tmp)
        if args.smoke_seconds > 0:
            summary["smoke"] = smoke(args, work)
            print(f"window: smoke {json.dumps(summary['smoke'])}", flush=True)
        if is_pack(args.train):                  # what the run learnt from, and what its compression cost
            meta = read_pack_meta(args.train)
            summary["pack"] = {"codec": "jpeg"} | {k: meta[k] for k in ("count", "available", "codec", "quality",
                                                                         "l_psnr_mean", "ab_psnr_mean") if k in meta}
        run = work / "run"
        cfg = _config(args, str(run))
        t_train = time.time()
        summary["val"] = train(cfg)       # the trainer validates on --val at the end of the budget
        summary["train_minutes"] = (time.time() - t_train) / 60
        records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
        steps = [r for r in records if "loss" in r]
        last = steps[-1]
        summary["train"] = {"steps": last["step"], "image_steps": last["step"] * args.batch_size,
                            "images_per_s": last["images_per_s"], "mfu": last.get("mfu"), "loss": last["loss"],
                            "config": {k: v for k, v in asdict(cfg).items() if k not in ("out",)}}
        checkpoint = _choose_checkpoint(args, run, records, summary)
        model, classes, info = model_from_checkpoint(checkpoint)
        weights = work / "weights.safetensors"
        info |= {"trained": {"image_steps": summary["train"]["image_steps"], "hardware": summary["device"],
                             "minutes": round(summary["train_minutes"], 2), "recipe": summary["train"]["config"]}}
        save_weights(weights, model.cpu(), classes=classes, half=True, info=info)
        summary["weights"] = split_weights(weights, out, int(args.part_mib * 2**20))
        shutil.copy(run / "log.jsonl", out / "train-log.jsonl")
    summary["total_minutes"] = (time.time() - t0) / 60
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


WINDOW_SETTINGS = ["val", "minutes", "steps", "width", "crop", "batch_size", "lr", "warmup", "zoom", "alpha", "loss",
                   "ab_bins", "ab_prune", "ab_soft", "init", "device", "workers", "eval_every", "ckpt_every",
                   "log_every", "compile", "seed", "head_scale"]    # the colorize train settings a window passes on


def parser() -> argparse.ArgumentParser:
    from chromalift.train.config import add_arguments
    p = argparse.ArgumentParser(prog="python -m chromalift.train.gpu_window", description=__doc__.split("\n\n")[0])
    p.add_argument("--train", required=True, help="training pack (colorize pack) or cache")
    p.add_argument("--out", required=True, help="folder for the weight parts, manifest.json and summary.json")
    p.add_argument("--smoke-seconds", type=float, default=20.0, help="length of the smoke step (0 = none)")
    p.add_argument("--part-mib", type=float, default=PART_BYTES / 2**20, help="size of each weights part")
    add_arguments(p, WINDOW_SETTINGS, defaults={
        "minutes": 7.0, "steps": 10**9, "crop": 128, "batch_size": 128, "lr": 1e-3, "warmup": 0.05, "device": "cuda",
        "workers": 0, "eval_every": 0, "ckpt_every": 2000, "log_every": 50}, helps={
        "val": "validation pack, evaluated at the end",
        "lr": "Adam's peak learning rate (a window's schedule is cosine)",
        "device": "cuda (the window), or cpu for a dry run",
        "eval_every": "also validate every N steps and return the weights of the best validation instead of the "
                      "last (0 = validate at the end only)"})
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from chromalift.model.weights import CheckpointError
    from chromalift.train.data.cache import DataError
    try:
        summary = run_window(args)
    except (WindowError, DataError, CheckpointError, ValueError) as e:
        print(f"window: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
