"""`colorize prepare`, `train`, `pack` and `join`: training sets in, a run, weights back from a GPU window."""
from __future__ import annotations

import argparse
from pathlib import Path

from chromalift.cli.common import fail
from chromalift.io.atomic import already_exists
from chromalift.io.names import one_line


def _train_parser() -> argparse.ArgumentParser:
    from chromalift.train.config import add_arguments

    p = argparse.ArgumentParser(prog="colorize train", description="Train the colorization network.")
    add_arguments(p)
    return p


def cmd_train(argv: list[str]) -> int:
    args = _train_parser().parse_args(argv)
    from chromalift.model.weights import CheckpointError
    from chromalift.train.config import TrainConfig
    from chromalift.train.data.cache import DataError
    from chromalift.train.loop import train

    try:
        train(TrainConfig(**vars(args)))
    except KeyboardInterrupt:
        return 130
    except (DataError, CheckpointError, ValueError) as e:
        return fail(str(e))
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
    from chromalift.train.data.cache import DataError, prepare
    from chromalift.train.data.pack import load_training_set
    try:
        classes = load_training_set(args.classes_from).classes if args.classes_from else None
        cache = prepare(args.src, args.dst, size=args.size, min_color_std=args.min_color_std, classes=classes,
                        workers=args.workers)
    except DataError as e:
        return fail(str(e))
    print(f"{one_line(args.dst)}: {len(cache)} photos, {len(cache.classes)} classes, {cache.size}x{cache.size}")
    return 0


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
                return fail(already_exists(path))
        classes = read_pack_meta(args.classes_from)["classes"] if args.classes_from else None
        for src, path, mib, min_std in targets:
            s = build_pack(src, path, max_mib=mib, size=args.size, quality=args.quality, codec=args.codec,
                           classes=classes, min_color_std=min_std)
            classes = s["classes"]
            print(f"{one_line(path)}: {s['count']} of {s['available']} photos, {s['bytes'] / 2**20:.1f} MiB, "
                  f"{len(s['classes'])} classes; PSNR against the originals: L {s['l_psnr_mean']:.1f} dB "
                  f"(5th percentile {s['l_psnr_p5']:.1f}), a*b* {s['ab_psnr_mean']:.1f} dB "
                  f"(5th percentile {s['ab_psnr_p5']:.1f})")
    except (DataError, OSError) as e:
        return fail(str(e))
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
        print(one_line(join_parts(args.folder, args.out, overwrite=args.overwrite)))
    except (WindowError, OSError) as e:
        return fail(str(e))
    return 0
