"""The `colorize` command: parses arguments, calls the library, reports. Nothing else lives here.

    colorize PHOTO|FOLDER|VIDEO ... [-o OUT]      colorize files and folders (the default command)
    colorize prepare SRC DST                     decode a photo folder once into a training cache
    colorize train --data D --out RUN            train (one process, or many under torchrun)
    colorize evaluate FOLDER                     quality metrics beside the grey baseline
    colorize export --onnx FILE                  export the model for deployment
    colorize weights CHECKPOINT OUT.safetensors  turn a training checkpoint into shippable weights
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

SUBCOMMANDS = ("prepare", "train", "evaluate", "export", "weights")


def _fail(message: str, code: int = 2) -> int:
    print(f"colorize: error: {message}", file=sys.stderr)
    return code


def _train_parser() -> argparse.ArgumentParser:
    from .train import TrainConfig

    p = argparse.ArgumentParser(prog="colorize train", description="Train the colorization network.")
    helps = {
        "data": "prepared cache (colorize prepare) or photo folder; class subfolders give scene labels",
        "out": "run folder for checkpoints (last.pt, best.pt), log.jsonl, TensorBoard logs and caches",
        "val": "held-out cache or photo folder, validated every --eval-every steps",
        "width": "channel width multiplier (paper: 1.0)", "crop": "training crop = global input size (paper: 224)",
        "prepare_size": "square size photo folders are resized to when prepared (paper: 256)",
        "min_color_std": "skip near-grey photos whose ab std is below this (Lab units)",
        "flip": "random horizontal flips", "batch_size": "global batch size, split over processes",
        "steps": "total optimisation steps", "optimizer": "adadelta (paper) or adam",
        "lr": "learning rate (default 1.0 for adadelta, 1e-3 for adam)",
        "alpha": "weight of the scene classification loss (paper: 1/300)",
        "rebalance": "0 = plain MSE (paper); >0 weights rare ab colours more (against sepia)",
        "color_sampling": "0 = uniform; p > 0 samples photos with probability ~ colourfulness^p",
        "seed": "random seed (data order, crops, flips, init)", "eval_every": "validate every N steps",
        "ckpt_every": "save last.pt every N steps", "log_every": "log every N steps",
        "workers": "data-loading processes per training process", "threads": "CPU threads for torch",
        "device": "auto, cpu, cuda, cuda:N or mps", "compile": "torch.compile the model",
        "channels_last": "channels-last memory format", "amp": "bf16 autocast on CUDA",
        "resume": "continue the run in --out from last.pt", "progress": "show a progress bar",
    }
    for f in fields(TrainConfig):
        if f.name == "extra":
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=helps[f.name])
        elif f.name in ("data", "out"):
            p.add_argument(flag, required=True, help=helps[f.name])
        else:
            kind = {"int": int, "float": float}.get(str(f.type).split(" ")[0], str)
            if f.name in ("lr", "threads"):
                kind = float if f.name == "lr" else int
            p.add_argument(flag, type=kind, default=f.default, help=helps[f.name])
    return p


def cmd_train(argv: list[str]) -> int:
    from .checkpoint import CheckpointError
    from .data import DataError
    from .train import TrainConfig, train

    args = _train_parser().parse_args(argv)
    try:
        train(TrainConfig(**vars(args)))
    except KeyboardInterrupt:
        return 130
    except (DataError, CheckpointError, ValueError) as e:
        return _fail(str(e))
    return 0


def cmd_prepare(argv: list[str]) -> int:
    from .data import DataError, load_cache, prepare

    p = argparse.ArgumentParser(prog="colorize prepare", description="Decode a photo folder once into a training cache.")
    p.add_argument("src", help="photo folder; class subfolders give scene labels")
    p.add_argument("dst", help="cache folder to write (replaced if it exists)")
    p.add_argument("--size", type=int, default=256, help="photos are resized to size x size (paper: 256)")
    p.add_argument("--min-color-std", type=float, default=3.0, help="skip near-grey photos (ab std in Lab units)")
    p.add_argument("--classes-from", help="a training cache whose class order to use (for a validation set)")
    p.add_argument("--workers", type=int, default=None, help="decoding processes (default: all cores)")
    args = p.parse_args(argv)
    try:
        classes = load_cache(args.classes_from).classes if args.classes_from else None
        cache = prepare(args.src, args.dst, size=args.size, min_color_std=args.min_color_std, classes=classes,
                        workers=args.workers)
    except DataError as e:
        return _fail(str(e))
    print(f"{args.dst}: {len(cache)} photos, {len(cache.classes)} classes, {cache.size}x{cache.size}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        return globals()[f"cmd_{argv[0]}"](argv[1:])
    return cmd_colorize(argv)


def cmd_colorize(argv: list[str]) -> int:
    raise NotImplementedError


if __name__ == "__main__":
    sys.exit(main())
