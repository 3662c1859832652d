"""Model v8's photos: the five public snapshots -> one training tree, a validation tree and held-out trees.

    python scripts/build_training_set.py SNAPSHOTS OUT

SNAPSHOTS holds each repository's photos as `git archive` left them (README, "Training", model v8);
OUT receives symbolic links only (the photos stay where they are, nothing is copied):
  OUT/train/<class>/      every source's training photos, one label space (MiniPlaces' 100 scene classes
                          by their names, the others' classes with a source prefix: in_, ct_, ic_, fl_)
  OUT/val/<class>/        validation while training: 10 per MiniPlaces class from its own validation
                          split, and the held-out photos of every other source
  OUT/heldout/<source>/<class>/  never trained on: MiniPlaces' validation split (all of it); every 20th
                          photo of each class of the other sources
  OUT/pack/<class>/       with --pack-mix: the photos a GPU window's 64 MiB pack takes, as many from each
                          source as the mix says (spread evenly over its classes), for `colorize pack`
Stdlib only, deterministic (sorted names), and it refuses an OUT that is not empty.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
HOLD_OUT_EVERY = 20
MINIPLACES_VAL_PER_CLASS = 10
IMAGENETTE = {"n01440764": "tench", "n02102040": "springer", "n02979186": "cassette_player",
              "n03000684": "chain_saw", "n03028079": "church", "n03394916": "french_horn",
              "n03417042": "garbage_truck", "n03425413": "gas_pump", "n03445777": "golf_ball",
              "n03888257": "parachute"}


def _photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _class_folders(root: Path, prefix: str, rename=lambda name: name, skip=()) -> dict[str, list[Path]]:
    return {prefix + rename(d.name).lower(): _photos(d) for d in sorted(root.iterdir())
            if d.is_dir() and not d.name.startswith(".") and d.name not in skip}


def _miniplaces(root: Path, categories: list[str]) -> tuple[dict, dict]:
    """(train, held out) by class name: labels from the snapshot's train.txt / val.txt."""
    splits: tuple[dict, dict] = ({}, {})
    for split, listing in zip(splits, ("train.txt", "val.txt")):
        for line in (root / listing).read_text().splitlines():
            rel, label = line.split()
            path = root / "images" / rel
            if path.is_file():
                split.setdefault(categories[int(label)], []).append(path)
    return splits


def sources(snapshots: Path, categories: list[str]) -> dict[str, tuple[dict, dict]]:
    """Every source's (train, held out) photos by class."""
    out = {"miniplaces": _miniplaces(snapshots / "ctfs", categories)}
    others = {
        "imagenette": _class_folders(snapshots / "imagenette/train", "in_", IMAGENETTE.get),
        "caltech101": _class_folders(snapshots / "caltech/101_ObjectCategories", "ct_",
                                     skip=("BACKGROUND_Google",)),
        "intel": _class_folders(snapshots / "intel/train", "ic_"),
        "flowers": _class_folders(snapshots / "flowers/flowers", "fl_"),
    }
    for name, d in _class_folders(snapshots / "imagenette/val", "in_", IMAGENETTE.get).items():
        others["imagenette"][name] = sorted(others["imagenette"][name] + d, key=lambda p: (p.name, str(p)))
    for name, d in _class_folders(snapshots / "intel/test", "ic_").items():
        others["intel"][name] = others["intel"][name] + d
    for source, classes in others.items():
        train = {c: [p for i, p in enumerate(ps) if i % HOLD_OUT_EVERY] for c, ps in classes.items()}
        held = {c: [p for i, p in enumerate(ps) if not i % HOLD_OUT_EVERY] for c, ps in classes.items()}
        out[source] = (train, held)
    return out


def _link(paths: list[Path], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(paths):
        os.symlink(p.resolve(), folder / f"{i:05d}{p.suffix.lower()}")


def _pack_subset(train: dict[str, dict[str, list[Path]]], mix: dict[str, int], out: Path) -> None:
    """The first photos of every class of each source, as many as the mix gives that source."""
    for source, classes in train.items():
        want, taken = mix.get(source, 0), dict.fromkeys(classes, 0)
        while sum(taken.values()) < want and any(taken[c] < len(ps) for c, ps in classes.items()):
            for c, ps in classes.items():
                if taken[c] < len(ps) and sum(taken.values()) < want:
                    taken[c] += 1
        for c, n in taken.items():
            if n:
                _link(classes[c][:n], out / "pack" / c)
        print(f"pack: {sum(taken.values())} photos of {source}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("snapshots", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--categories", type=Path, default=Path("../shared/data/miniplaces/categories.txt"))
    ap.add_argument("--pack-mix", default="", help="e.g. miniplaces=8000,caltech101=4000,...")
    args = ap.parse_args()
    mix = {k: int(v) for k, v in (item.split("=") for item in args.pack_mix.split(",") if item)}
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"{args.out}: not empty; choose a new folder")
    categories = [line.split()[0] for line in args.categories.read_text().splitlines() if line.strip()]
    every = sources(args.snapshots, categories)
    for source, (train, held) in every.items():
        for cls, paths in train.items():
            _link(paths, args.out / "train" / cls)
        for cls, paths in held.items():
            _link(paths, args.out / "heldout" / source / cls)
            _link(paths[:MINIPLACES_VAL_PER_CLASS] if source == "miniplaces" else paths, args.out / "val" / cls)
        print(f"{source}: {sum(map(len, train.values()))} training photos in {len(train)} classes, "
              f"{sum(map(len, held.values()))} held out")
    if mix:
        _pack_subset({source: train for source, (train, _) in every.items()}, mix, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
