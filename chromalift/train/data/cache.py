"""Training data: a folder of photos -> a memory-mapped uint8 cache (batches.py makes batches from it).

Decoding JPEGs and converting to Lab on two CPU cores costs more than a small network's step, so
`prepare()` decodes and resizes every photo once into `images.npy` (N x S x S x 3, memory-mapped),
with the labels, each photo's colourfulness and the ab histogram of the set.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from chromalift.color.lab import rgb_to_lab, uint8_to_float
from chromalift.evaluation.metrics import colorfulness_u8
from chromalift.io.atomic import make_dir
from chromalift.io.names import one_line
from chromalift.io.photos import ImageError, find_images, read_photo

AB_BINS = 32   # histogram of a*, b* over [-128, 128) in bins of 8 Lab units


class DataError(Exception):
    """A training folder or cache that cannot be used; str() names it and the problem."""


@dataclass
class Cache:
    """A prepared training set, memory-mapped."""
    root: Path
    images: np.ndarray          # (N, S, S, 3) uint8
    labels: np.ndarray          # (N,) int64, -1 = no label
    colorfulness: np.ndarray    # (N,) float32, Hasler-Suesstrunk colourfulness of each photo
    ab_hist: np.ndarray         # (AB_BINS, AB_BINS) float64, pixel counts of the set
    classes: list[str]

    @property
    def size(self) -> int:
        return self.images.shape[1]

    def __len__(self) -> int:
        return self.images.shape[0]


def decode_photo(args: tuple[str, int, float]) -> tuple[np.ndarray | None, float, np.ndarray | None, str]:
    """Decode and resize one photo as every training set holds it (the centre square, bicubic); returns
    (pixels, colourfulness, ab histogram, status: ok, grey or unreadable). Caches and packs both use it."""
    path, size, min_color_std = args
    try:
        photo = read_photo(path)
    except ImageError as e:
        return None, 0.0, None, f"unreadable: {e}"
    img = Image.fromarray(photo.u8)
    if img.size != (size, size):   # the centre square: a wide photo is cropped, never squeezed
        w, h = img.size
        side = min(w, h)
        box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
        img = img.resize((size, size), Image.Resampling.BICUBIC, box=box, reducing_gap=3.0)
    pixels = np.array(img, dtype=np.uint8)
    lab = rgb_to_lab(uint8_to_float(torch.from_numpy(pixels)))
    ab = lab[1:].reshape(2, -1)
    if float(ab.std(dim=1).mean()) < min_color_std:
        return None, 0.0, None, "grey"
    hist, _, _ = np.histogram2d(ab[0].numpy(), ab[1].numpy(), bins=AB_BINS, range=[[-128, 128], [-128, 128]])
    return pixels, colorfulness_u8(pixels), hist, "ok"


MAX_NAMED = 20   # unreadable photos named one line each; beyond this, a count


def skip(skipped: dict, status: str, write=print) -> None:
    """Count a photo that is not used; an unreadable one is named (status holds the reader's one line
    with the file's name), the first MAX_NAMED of them, so a user can find and fix them."""
    kind = "grey" if status == "grey" else "unreadable"
    skipped[kind] += 1
    if kind == "unreadable" and skipped[kind] <= MAX_NAMED:
        write(f"skipped, {one_line(status)}" + (" (further unreadable photos are counted, not named)"
                                     if skipped[kind] == MAX_NAMED else ""), file=sys.stderr)


def scan_folder(folder: Path) -> tuple[list[Path], list[int], list[str]]:
    """Photos under `folder` and their labels: class subfolders give labels, a flat folder gives -1."""
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    files, labels = [], []
    for p in find_images(folder):
        rel = p.relative_to(folder).parts
        files.append(p)
        labels.append(classes.index(rel[0]) if len(rel) > 1 else -1)
    if not files:
        raise DataError(f"{folder}: no images found")
    if all(label == -1 for label in labels):
        classes = []
    return files, labels, classes


def labelled_files(src: Path, classes: list[str] | None = None) -> tuple[list[Path], list[int], list[str]]:
    """The photos under `src`, their labels and the class names; with `classes` (e.g. the training set's
    for a validation set) the labels follow that order, and a class folder outside it is an error."""
    files, labels, found = scan_folder(src)
    if classes is None or not found:
        return files, labels, found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise DataError(f"{src}: class folders not in the training classes: {', '.join(unknown[:5])}")
    return files, [classes.index(found[i]) if i >= 0 else -1 for i in labels], classes


def prepare(src: str | os.PathLike, dst: str | os.PathLike, *, size: int = 256, min_color_std: float = 3.0,
            classes: list[str] | None = None, workers: int | None = None, progress: bool = True) -> Cache:
    """Decode every photo under `src` once, resized to size x size, into a cache folder `dst`.

    Photos whose a*b* standard deviation is below `min_color_std` (Lab units) are skipped as near-grey,
    as the paper removed low-colour-variance images; unreadable files are skipped and counted.
    `classes` fixes the label order (e.g. a validation set uses the training set's classes).
    The cache is built beside `dst` and moved into place; a failure leaves what was there before.
    """
    src, dst = Path(src), Path(dst)
    check_cache_destination(src, dst)
    files, labels, classes = labelled_files(src, classes)
    dst.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(dst)
    tmp = make_dir(f".{dst.name}{BUILD_MARK}", dst.parent)
    try:
        _build(src, dst, tmp, files, labels, classes, size, min_color_std, workers, progress)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)    # on any failure, Ctrl-C included; empty after success
    return load_cache(dst)


BUILD_MARK = ".prepare-"
CACHE_FILES = ("images.npy", "labels.npy", "colorfulness.npy", "ab_hist.npy")


def check_cache_destination(src: Path, dst: Path) -> None:
    """Refuse a cache folder that is, holds or lies inside the photos, or is a folder that is not a cache."""
    s, d = src.resolve(), dst.resolve()
    if d == s or d.is_relative_to(s) or s.is_relative_to(d):
        raise DataError(f"{dst}: the cache must be outside the photo folder {src} (and not contain it)")
    if d.exists() and not d.is_dir():
        raise DataError(f"{dst}: is a file, not a cache folder")
    if d.is_dir() and any(d.iterdir()) and not (d / "meta.json").is_file():
        raise DataError(f"{dst}: a folder that is not a prepared cache; refusing to write into it")


def _remove_stale_builds(dst: Path) -> None:
    """Remove build folders that a killed `prepare` of this same cache left beside it."""
    for stale in dst.parent.glob(f".{dst.name}{BUILD_MARK}*"):
        if stale.is_dir() and all(f.name in (*CACHE_FILES, "meta.json", "images.hdr") for f in stale.iterdir()):
            shutil.rmtree(stale, ignore_errors=True)


def _install(tmp: Path, dst: Path) -> None:
    """Move a finished cache into place; an old cache there loses only the files a cache consists of."""
    if not dst.exists():
        os.replace(tmp, dst)
        return
    (dst / "meta.json").unlink(missing_ok=True)    # until the new meta.json lands, dst is not a cache
    for name in CACHE_FILES:
        os.replace(tmp / name, dst / name)
    os.replace(tmp / "meta.json", dst / "meta.json")


def _build(src: Path, dst: Path, tmp: Path, files: list[Path], labels: list[int], classes: list[str],
           size: int, min_color_std: float, workers: int | None, progress: bool) -> None:
    from chromalift.progress import bar as progress_bar

    images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8, shape=(len(files), size, size, 3))
    kept_labels, colorfulness, kept_files = [], [], []
    hist = np.zeros((AB_BINS, AB_BINS))
    skipped = {"grey": 0, "unreadable": 0}
    n = 0
    jobs = [(str(f), size, min_color_std) for f in files]
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count(), initializer=torch.set_num_threads,
                             initargs=(1,)) as pool:
        results = pool.map(decode_photo, jobs, chunksize=64)
        bar = progress_bar(zip(files, labels, results), total=len(files), desc=f"prepare {src.name}",
                           disable=not progress, unit="img")
        for f, label, (pixels, cf, h, status) in bar:
            if pixels is None:
                skip(skipped, status, bar.write)
                continue
            images[n] = pixels
            kept_labels.append(label)
            colorfulness.append(cf)
            kept_files.append(str(f.relative_to(src)))
            hist += h
            n += 1
    if n == 0:
        raise DataError(f"{src}: none of the {len(files)} images is usable ({skipped['grey']} near-grey, "
                        f"{skipped['unreadable']} unreadable)")
    images.flush()
    del images
    _truncate_npy(tmp / "images.npy", n, (size, size, 3))
    np.save(tmp / "labels.npy", np.asarray(kept_labels, dtype=np.int64))
    np.save(tmp / "colorfulness.npy", np.asarray(colorfulness, dtype=np.float32))
    np.save(tmp / "ab_hist.npy", hist)
    meta = {"source": str(src.resolve()), "size": size, "count": n, "classes": classes,
            "min_color_std": min_color_std, "skipped": skipped, "files": kept_files}
    (tmp / "meta.json").write_text(json.dumps(meta))
    _install(tmp, dst)


def _truncate_npy(path: Path, n: int, item_shape: tuple[int, ...]) -> None:
    """Shrink an .npy file written for more rows to its first n rows, in place (skipped photos leave a tail)."""
    full = np.load(path, mmap_mode="r")
    if full.shape[0] == n:
        return
    del full
    header_tmp = path.with_suffix(".hdr")
    with open(header_tmp, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (n, *item_shape)})
    old = np.load(path, mmap_mode="r")
    offset = old.offset
    del old
    new_header = header_tmp.read_bytes()
    header_tmp.unlink()
    with open(path, "r+b") as f:
        f.seek(0)
        if len(new_header) != offset:
            raise DataError(f"{path}: cannot rewrite the array header")
        f.write(new_header)
        f.truncate(offset + n * int(np.prod(item_shape)))


def load_cache(path: str | os.PathLike) -> Cache:
    path = Path(path)
    meta_file = path / "meta.json"
    if not meta_file.exists():
        raise DataError(f"{path}: not a prepared cache (no meta.json); run `colorize prepare` on a photo folder")
    meta = json.loads(meta_file.read_text())
    return Cache(root=path, images=np.load(path / "images.npy", mmap_mode="r"),
                 labels=np.load(path / "labels.npy"), colorfulness=np.load(path / "colorfulness.npy"),
                 ab_hist=np.load(path / "ab_hist.npy"), classes=meta["classes"])


def rebalance_weights(ab_hist: np.ndarray, mix: float) -> torch.Tensor:
    """Per-ab-bin loss weights that favour rare (saturated) colours, after Zhang et al. (2016).

    w = 1 / ((1 - mix) * p + mix / Q) over the Q occupied bins, normalised so that E_p[w] = 1;
    mix = 1 gives uniform weights (the paper's plain MSE).
    """
    p = ab_hist / ab_hist.sum()
    occupied = p > 0
    w = np.zeros_like(p)
    w[occupied] = 1.0 / ((1.0 - mix) * p[occupied] + mix / occupied.sum())
    w /= (p * w).sum()
    return torch.from_numpy(w).float().flatten()   # indexed by ab_bin_index


def ab_bin_index(ab: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) ab in Lab units -> (B, H, W) index into the flattened AB_BINS x AB_BINS histogram."""
    idx = ((ab + 128.0) / (256.0 / AB_BINS)).long().clamp_(0, AB_BINS - 1)
    return idx[:, 0] * AB_BINS + idx[:, 1]


