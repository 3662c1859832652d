"""The `colorize` command: parses arguments, calls the library, reports. Nothing else lives here.

    colorize PHOTO|FOLDER|VIDEO ... [-o OUT]      colorize files and folders (the default command)
    colorize prepare SRC DST                     decode a photo folder once into a training cache
    colorize train --data D --out RUN            train (one process, or many under torchrun)
    colorize evaluate FOLDER                     quality metrics beside the grey baseline
    colorize export --onnx FILE                  export the model for deployment
    colorize weights SOURCE OUT.safetensors      weights from a checkpoint, or with other inference settings
    colorize web                                 a local page to colorize in the browser (extra: web)
    colorize pack SRC DST.npz --mib N            a compact training pack for a short GPU window
    colorize join PARTS/ OUT.safetensors         reassemble weights a GPU window left in parts
    colorize study PHOTOS --out STUDY            the paper's user study: prepare, --serve, --report
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path

from chromalift.io.atomic import already_exists

SUBCOMMANDS = ("prepare", "train", "evaluate", "export", "weights", "web", "pack", "join", "study")


def number(kind, lo: float, hi: float):
    """An argparse type: a finite number of `kind` in [lo, hi]: nan, inf and out-of-range values are refused
    in argparse's one error line instead of failing later."""
    g = lambda v: f"{v:g}" if kind is float else str(v)

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if kind is int else 'a number'}") from None
        if not lo <= value <= hi:          # nan fails every comparison; inf is beyond any bound
            raise argparse.ArgumentTypeError(f"{text}: choose a number from {g(lo)} to {g(hi)}")
        return value
    return parse


def _fail(message: str, code: int = 1, prog: str = "colorize") -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code


def _missing_extra(command: str, extra: str, *modules: str) -> str | None:
    """The one-line message when an optional extra that `command` needs is not installed, else None."""
    from importlib.util import find_spec
    missing = [m for m in modules if find_spec(m) is None]
    return (f"{command} needs the {extra} extra ({missing[0]} is missing): pip install 'chromalift[{extra}]'"
            if missing else None)


def _listen(serve, *args, host: str, port: int) -> str | None:
    """Run a local server until Ctrl-C; -> the one-line error when its port cannot be opened, else None."""
    try:
        serve(*args, host, port)
    except KeyboardInterrupt:
        pass
    except OSError as e:
        return f"cannot listen on {host}:{port} ({e.strerror or e})"
    return None


def _train_parser() -> argparse.ArgumentParser:
    from chromalift.train.config import TrainConfig

    p = argparse.ArgumentParser(prog="colorize train", description="Train the colorization network.")
    helps = {
        "data": "prepared cache (colorize prepare) or photo folder; class subfolders give scene labels",
        "out": "run folder for checkpoints (last.pt, best.pt), log.jsonl, TensorBoard logs and caches",
        "val": "held-out cache or photo folder, validated every --eval-every steps",
        "width": "channel width multiplier (paper: 1.0)", "crop": "training crop = global input size (paper: 224)",
        "prepare_size": "square size photo folders are resized to when prepared (paper: 256)",
        "min_color_std": "skip near-grey photos whose ab std is below this (Lab units)",
        "flip": "random horizontal flips",
        "zoom": "1 = off; Z > 1: each crop is a random box of 1/Z^2 to all of its area (aspect 3/4 to 4/3) "
                "enlarged to the crop size, so objects appear up to Z times larger",
        "batch_size": "global batch size, split over processes",
        "steps": "total optimisation steps (the most; --minutes may end the run first)",
        "minutes": "time budget in minutes of wall time (0 = none): the run stops and saves there, and a "
                   "cosine schedule ends exactly there",
        "schedule": "learning rate: constant, or cosine (linear warm-up, then cosine decay to the end)",
        "warmup": "warm-up as a fraction of the run (cosine)", "final_lr": "cosine ends at this fraction of --lr",
        "loss": "mse (the paper: regression of ab) or classify (cross-entropy over ab bins, decoded by the "
                "annealed mean; Zhang et al. 2016)", "ab_bins": "grid side of the ab bins for --loss classify",
        "ab_prune": "with --loss classify, predict only the bins that the training photos' colours fall in "
                    "(a cheaper head; their list is stored in the weights)",
        "ab_soft": "with --loss classify: 0 = each pixel's target is the bin its colour falls in; sigma > 0 (Lab "
                   "units) = its 5 nearest bins weighted by a Gaussian of the distance (Zhang et al.'s soft-encoding, "
                   "sigma 5)",
        "global_features": "the global prior (--no-global-features: the paper's ablation without it)",
        "resident": "keep the photos on the device and make batches there: auto (on CUDA), on, off",
        "init": "start from these weights (.safetensors; same architecture; shared classes and ab bins keep "
                "their rows), e.g. the shipped model",
        "optimizer": "adadelta (paper) or adam",
        "lr": "learning rate (default 1.0 for adadelta, 1e-3 for adam)",
        "alpha": "weight of the scene classification loss (paper: 1/300)",
        "rebalance": "0 = plain MSE (paper); s in (0, 1] weights each ab bin by 1/(s p + (1-s)/Q) "
                     "(p its frequency, Q bins): rare, saturated colours count more (against sepia)",
        "color_sampling": "0 = uniform; p > 0 samples photos with probability ~ colourfulness^p",
        "class_weights": "PATTERN=W[,PATTERN=W...]: photos of the classes whose names match PATTERN (shell-style, "
                         "e.g. 'fl_*=2') are drawn W times as often (a source's share of the mix)",
        "seed": "random seed (data order, crops, flips, init)", "eval_every": "validate every N steps",
        "ckpt_every": "save last.pt every N steps", "log_every": "log every N steps",
        "workers": "data-loading processes per training process (default: none on a CPU, where the batches "
                   "are made between steps: a loader process would take the cores the step runs on; 1 elsewhere)",
        "threads": "CPU threads for torch",
        "device": "auto, cpu, cuda, cuda:N or mps", "compile": "torch.compile the model",
        "channels_last": "channels-last memory format", "amp": "bf16 autocast on CUDA and on CPUs with native bf16 (AVX512-BF16, AMX)",
        "resume": "continue the run in --out from last.pt", "progress": "show a progress bar",
    }
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=helps[f.name])
        elif f.name in ("data", "out"):
            p.add_argument(flag, required=True, help=helps[f.name])
        else:
            kind = {"int": int, "float": float}.get(str(f.type).split(" ")[0], str)   # "float | None" -> float
            p.add_argument(flag, type=kind, default=f.default, help=helps[f.name])
    return p


def cmd_train(argv: list[str]) -> int:
    args = _train_parser().parse_args(argv)
    from chromalift.model.weights import CheckpointError
    from chromalift.train.data.cache import DataError
    from chromalift.train.loop import TrainConfig, train

    try:
        train(TrainConfig(**vars(args)))
    except KeyboardInterrupt:
        return 130
    except (DataError, CheckpointError, ValueError) as e:
        return _fail(str(e))
    return 0


def cmd_prepare(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="colorize prepare", description="Decode a photo folder once into a training cache.")
    p.add_argument("src", help="photo folder; class subfolders give scene labels")
    p.add_argument("dst", help="cache folder to write (replaced if it exists)")
    p.add_argument("--size", type=int, default=256, help="photos are resized to size x size (paper: 256)")
    p.add_argument("--min-color-std", type=float, default=3.0, help="skip near-grey photos (ab std in Lab units)")
    p.add_argument("--classes-from", help="a training cache whose class order to use (for a validation set)")
    p.add_argument("--workers", type=int, default=None, help="decoding processes (default: all cores)")
    args = p.parse_args(argv)
    from chromalift.train.data.cache import DataError, load_cache, prepare
    try:
        classes = load_cache(args.classes_from).classes if args.classes_from else None
        cache = prepare(args.src, args.dst, size=args.size, min_color_std=args.min_color_std, classes=classes,
                        workers=args.workers)
    except DataError as e:
        return _fail(str(e))
    print(f"{args.dst}: {len(cache)} photos, {len(cache.classes)} classes, {cache.size}x{cache.size}")
    return 0


def cmd_evaluate(argv: list[str]) -> int:
    from chromalift.inference.geometry import DEFAULT_PROCESS_SIZE

    p = argparse.ArgumentParser(prog="colorize evaluate", description="Metrics on folders of colour photos, "
                                "beside the grey baseline: PSNR, SSIM, colourfulness, AuC, scene top-1/top-5.")
    p.add_argument("folders", nargs="+", help="folders of colour photos (class subfolders enable scene accuracy)")
    p.add_argument("--model", help="weights (.safetensors); default: the shipped model")
    p.add_argument("--out", default="evaluation", help="folder for results.json and the comparison grids")
    p.add_argument("--limit", type=int, help="evaluate an evenly spaced sample of at most this many photos per folder")
    p.add_argument("--process-size", type=int, default=DEFAULT_PROCESS_SIZE, help="as for colorize (0 = full size)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    args = p.parse_args(argv)
    if message := _missing_extra("colorize evaluate", "eval", "skimage"):
        return _fail(message)
    from chromalift.evaluation.evaluate import evaluate, markdown_table, save_json
    from chromalift.inference.colorizer import Colorizer
    from chromalift.io.photos import ImageError
    from chromalift.model.weights import CheckpointError
    out = Path(args.out)
    for folder in args.folders:       # results inside an evaluated folder would be read back as photos next time
        if out.resolve().is_relative_to(Path(folder).resolve()):
            return _fail(f"--out {out} lies inside the evaluated folder {folder}: choose a folder outside it")
    try:
        colorizer = Colorizer.load(args.model, device=args.device)
        out.mkdir(parents=True, exist_ok=True)
        results, names = [], []
        for folder in args.folders:
            name = Path(folder).resolve().name
            names.append(name if name not in names else f"{name}-{len(names) + 1}")   # A/set and B/set: two grids
            grid = out / f"grid-{names[-1]}.png"
            results.append(evaluate(colorizer, folder, limit=args.limit, process_size=args.process_size or None,
                                    grid=grid))
    except (CheckpointError, ImageError, FileNotFoundError, ValueError, OSError) as e:
        return _fail(str(e))
    print(markdown_table(results))
    save_json(results, out / "results.json")
    print(f"\nwrote {out / 'results.json'} and comparison grids (grey | ours | truth) in {out}/")
    failed = [line for r in results for line in r["failed"]]
    for line in failed:
        print(f"colorize evaluate: skipped {line}", file=sys.stderr)
    return 1 if failed else 0


def cmd_export(argv: list[str]) -> int:
    from chromalift.inference.colorizer import DEFAULT_WEIGHTS
    from chromalift.inference.engines import export_onnx
    from chromalift.model.weights import CheckpointError, load_weights

    p = argparse.ArgumentParser(prog="colorize export", description="Export the model for deployment.")
    p.add_argument("--onnx", required=True, help="folder to write global.onnx and local.onnx into "
                   "(local.onnx takes any height and width, multiples of 8)")
    p.add_argument("--model", help="weights (.safetensors); default: the shipped model")
    p.add_argument("--overwrite", action="store_true", help="replace global.onnx and local.onnx if there")
    args = p.parse_args(argv)
    if message := _missing_extra("colorize export", "onnx", "onnx"):
        return _fail(message)
    existing = [Path(args.onnx) / n for n in ("global.onnx", "local.onnx") if (Path(args.onnx) / n).exists()]
    if existing and not args.overwrite:
        return _fail(already_exists(existing[0]))
    try:
        model = load_weights(args.model or DEFAULT_WEIGHTS)[0]
        glob, local = export_onnx(model, args.onnx)
    except (CheckpointError, OSError) as e:
        return _fail(str(e))
    print(f"wrote {glob} and {local}")
    return 0


def cmd_weights(argv: list[str]) -> int:
    from chromalift.cli.weights import cmd_weights as weights
    return weights(argv)


def cmd_web(argv: list[str]) -> int:
    from chromalift.apps.web import MAX_PIXELS, MAX_UPLOAD_MB, Service, serve
    from chromalift.inference.colorizer import DEFAULT_PROCESS_SIZE, Colorizer
    from chromalift.model.weights import CheckpointError

    p = argparse.ArgumentParser(prog="colorize web", description="A local web page to colorize photos, with "
                                "before/after comparison, download, reference photos and examples.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this computer only)")
    p.add_argument("--port", type=number(int, 0, 65535), default=7860)
    p.add_argument("--model", help="weights (.safetensors); default: the shipped model")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--max-upload-mb", type=number(float, 0.001, 4096), default=MAX_UPLOAD_MB, help="largest photo file accepted")
    p.add_argument("--max-pixels", type=number(float, 1, 1e10), default=MAX_PIXELS, help="largest photo accepted, in pixels")
    p.add_argument("--process-size", type=number(int, 0, 16384), default=DEFAULT_PROCESS_SIZE, help="as for colorize")
    args = p.parse_args(argv)
    if message := _missing_extra("colorize web", "web", "fastapi", "multipart", "uvicorn"):
        return _fail(message)
    try:
        colorizer = Colorizer.load(args.model, device=args.device)
    except (CheckpointError, ValueError) as e:
        return _fail(str(e))
    service = Service(colorizer, max_upload_mb=args.max_upload_mb, max_pixels=int(args.max_pixels),
                      process_size=args.process_size or None)
    error = _listen(serve, service, host=args.host, port=args.port)
    return _fail(error) if error else 0


def cmd_pack(argv: list[str]) -> int:
    from chromalift.train.data.cache import DataError
    from chromalift.train.data.pack import CODECS, build_pack, read_pack_meta

    p = argparse.ArgumentParser(prog="colorize pack", description="Pack as many photos as fit in a size budget "
                                "into one file (JPEG or WebP, 4:2:0 chroma) for training in a short GPU window.")
    p.add_argument("src", help="photo folder; class subfolders give scene labels")
    p.add_argument("dst", help="pack file to write (.npz)")
    p.add_argument("--mib", type=float, required=True, help="size budget of the pack in MiB")
    p.add_argument("--size", type=int, default=128, help="photos are resized to size x size")
    p.add_argument("--codec", choices=tuple(CODECS), default="jpeg", help="how photos are stored: WebP at "
                   "quality 70 holds 1.6x the photos of JPEG at 85 in the same bytes (1.9x at 55)")
    p.add_argument("--quality", type=int, default=85, help="JPEG or WebP quality, 1-100")
    p.add_argument("--val-from", help="also pack this folder as the validation pack DST-val.npz")
    p.add_argument("--val-mib", type=float, default=4.0, help="size budget of the validation pack")
    p.add_argument("--classes-from", help="a pack whose class order to use")
    p.add_argument("--min-color-std", type=float, default=3.0, help="skip near-grey photos (the validation pack "
                   "keeps them)")
    p.add_argument("--overwrite", action="store_true", help="replace existing packs")
    args = p.parse_args(argv)
    dst = Path(args.dst)
    targets = [(args.src, dst, args.mib, args.min_color_std)]
    if args.val_from:
        targets.append((args.val_from, dst.with_name(dst.stem + "-val" + dst.suffix), args.val_mib, 0.0))
    try:
        for _, path, _, _ in targets:
            if path.exists() and not args.overwrite:
                return _fail(already_exists(path))
        classes = read_pack_meta(args.classes_from)["classes"] if args.classes_from else None
        for src, path, mib, min_std in targets:
            s = build_pack(src, path, max_mib=mib, size=args.size, quality=args.quality, codec=args.codec,
                           classes=classes, min_color_std=min_std)
            classes = s["classes"]
            print(f"{path}: {s['count']} of {s['available']} photos, {s['bytes'] / 2**20:.1f} MiB, "
                  f"{len(s['classes'])} classes; PSNR against the originals: L {s['l_psnr_mean']:.1f} dB "
                  f"(5th percentile {s['l_psnr_p5']:.1f}), a*b* {s['ab_psnr_mean']:.1f} dB "
                  f"(5th percentile {s['ab_psnr_p5']:.1f})")
    except (DataError, OSError) as e:
        return _fail(str(e))
    return 0


def cmd_join(argv: list[str]) -> int:
    from chromalift.train.gpu_window import WindowError, join_parts

    p = argparse.ArgumentParser(prog="colorize join", description="Reassemble weights that a GPU window left "
                                "in parts (manifest.json + parts), checksums verified.")
    p.add_argument("folder", help="the folder holding manifest.json and the parts")
    p.add_argument("out", help="weights file to write (.safetensors)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    args = p.parse_args(argv)
    try:
        print(join_parts(args.folder, args.out, overwrite=args.overwrite))
    except (WindowError, OSError) as e:
        return _fail(str(e))
    return 0


def cmd_study(argv: list[str]) -> int:
    from chromalift.cli.study import cmd_study as study
    return study(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv in (["--version"], ["-V"]):
        from importlib.metadata import PackageNotFoundError, version
        try:
            print(f"colorize {version('chromalift')}")
        except PackageNotFoundError:
            print("colorize (not installed)")
        return 0
    if argv and argv[0] in SUBCOMMANDS:
        return globals()[f"cmd_{argv[0]}"](argv[1:])
    from chromalift.cli.colorize import cmd_colorize
    return cmd_colorize(argv)


def run() -> None:
    """The `colorize` command: main(), then, after the photo and film command, an immediate exit.

    Python's own shutdown after torch has been imported takes 0.5-0.9 s on a 2-core machine (measured with
    benchmarks/startup.py), a third of a one-photo run, and has nothing left to do here: every output is
    written and closed, every thread joined. The other subcommands (training with its workers, the web
    server) keep the normal shutdown."""
    argv = sys.argv[1:]
    code = main(argv)
    if argv and argv[0] in SUBCOMMANDS:
        sys.exit(code)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
