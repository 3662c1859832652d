"""Training packs: a photo folder -> one compact file that fits an upload budget (a rented GPU's window).

Each photo is resized to size x size once and stored as a JPEG or a lossy WebP, both with 4:2:0 chroma:
the network predicts a*b* at half resolution, so chroma subsampling costs little of what it can learn.
JPEG is what every machine decodes; WebP (in every Pillow wheel) holds 1.6x the photos in the same bytes
at quality 70 against JPEG's 85, with a coarser L (35 against 44 dB), which is the better trade for a
window that goes over its pack many times. Photos are taken round-robin over the classes (the first
photo of every class, then the second...), so a pack cut off by its budget keeps the classes balanced.
What the compression costs is measured at build time: PSNR of the pack's L (the network's input) and
a*b* (its target) against the original's.

A pack is one uncompressed .npz (NumPy only, no pickle): `data` (the encoded photos end to end),
`offsets`, `labels`, `colorfulness`, `ab_hist` (of the originals) and `meta` (JSON). `load_pack` decodes
it into an in-memory `Cache`, so everything that trains from a prepared cache trains from a pack.
"""
from __future__ import annotations

import io
import json
import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from chromalift.color.lab import rgb_to_lab, uint8_to_float
from chromalift.io.atomic import atomic_write
from chromalift.train.data.cache import AB_BINS, Cache, DataError, decode_photo, labelled_files, load_cache, skip

PACK_FORMAT = "colorizer/pack/v1"   # the format name from before the package was renamed: old packs still load
PACK_SUFFIX = ".npz"
CODECS = {"jpeg": ("JPEG", {"subsampling": 2, "optimize": True}), "webp": ("WEBP", {"method": 6})}


def _encode_one(args: tuple[str, int, float, int, str]) -> tuple[bytes | None, float, np.ndarray | None,
                                                               tuple[float, float], str]:
    """Decode, resize and encode one photo -> (bytes, colourfulness, ab histogram, (L, ab) PSNR, status)."""
    path, size, min_color_std, quality, codec = args
    pixels, cf, hist, status = decode_photo((path, size, min_color_std))
    if pixels is None:
        return None, 0.0, None, (0.0, 0.0), status
    fmt, options = CODECS[codec]
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt, quality=quality, **options)
    decoded = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return buf.getvalue(), cf, hist, lab_psnr(pixels, decoded), status


def lab_psnr(original: np.ndarray, packed: np.ndarray) -> tuple[float, float]:
    """PSNR (dB) of the packed photo's L (peak 100) and a*b* (peak 255, their range) against the original's."""
    lab = lambda rgb: rgb_to_lab(uint8_to_float(torch.from_numpy(np.array(rgb))[None]))[0].double()
    error = (lab(original) - lab(packed)) ** 2
    psnr = lambda mse, peak: float("inf") if mse == 0 else 10.0 * float(np.log10(peak ** 2 / mse))
    return psnr(float(error[0].mean()), 100.0), psnr(float(error[1:].mean()), 255.0)


def _stats(values: list[float]) -> tuple[float, float]:
    """Mean and 5th percentile of the finite PSNRs (identical photos give inf)."""
    finite = [v for v in values if np.isfinite(v)]
    return (float(np.mean(finite)), float(np.percentile(finite, 5))) if finite else (float("inf"), float("inf"))


def _round_robin(labels: list[int]) -> list[int]:
    """Indices ordered so that every class gives its first photo, then its second, and so on."""
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    queues = list(by_class.values())
    order, depth = [], 0
    while len(order) < len(labels):
        order += [q[depth] for q in queues if depth < len(q)]
        depth += 1
    return order


def build_pack(src: str | os.PathLike, dst: str | os.PathLike, *, max_mib: float, size: int = 128,
               quality: int = 85, codec: str = "jpeg", min_color_std: float = 3.0,
               classes: list[str] | None = None, workers: int | None = None, progress: bool = True) -> dict:
    """Pack as many photos of `src` as fit in `max_mib` MiB into `dst` (.npz); returns its summary."""
    from chromalift.progress import bar as progress_bar

    src, dst = Path(src), Path(dst)
    if codec not in CODECS:
        raise DataError(f"codec {codec!r}: choose one of {', '.join(CODECS)}")
    if not 1 <= quality <= 100:
        raise DataError(f"quality {quality}: choose 1-100")
    if dst.suffix != PACK_SUFFIX:
        raise DataError(f"{dst}: a pack is a {PACK_SUFFIX} file")
    if dst.resolve().is_relative_to(src.resolve()):
        raise DataError(f"{dst}: the pack must be outside the photo folder {src}")
    files, labels, classes = labelled_files(src, classes)
    order = _round_robin(labels)
    budget = int(max_mib * 2**20) - 64 * 1024 - 16 * len(files)     # headers, offsets, labels, metadata
    blobs, kept, cfs, psnrs = [], [], [], []
    hist, used, skipped = np.zeros((AB_BINS, AB_BINS)), 0, {"grey": 0, "unreadable": 0}
    jobs = [(str(files[i]), size, min_color_std, quality, codec) for i in order]
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count(), initializer=torch.set_num_threads,
                             initargs=(1,)) as pool:
        bar = progress_bar(total=len(jobs), desc=f"pack {src.name}", unit="img", disable=not progress)
        for i, (blob, cf, h, psnr, status) in zip(order, pool.map(_encode_one, jobs, chunksize=32)):
            bar.update()
            if blob is None:
                skip(skipped, status, bar.write)
                continue
            if used + len(blob) > budget:
                break
            blobs.append(blob), kept.append(i), cfs.append(cf), psnrs.append(psnr)
            hist += h
            used += len(blob)
        bar.close()
        pool.shutdown(cancel_futures=True)
    if not blobs:
        raise DataError(f"{src}: no photo fits in {max_mib} MiB (or none is usable)")
    (l_mean, l_p5), (ab_mean, ab_p5) = _stats([p[0] for p in psnrs]), _stats([p[1] for p in psnrs])
    summary = {"format": PACK_FORMAT, "source": str(src.resolve()), "size": size, "codec": codec,
               "quality": quality, "chroma": "4:2:0", "count": len(blobs), "available": len(files),
               "classes": classes, "min_color_std": min_color_std, "skipped": skipped, "bytes": used,
               "l_psnr_mean": l_mean, "l_psnr_p5": l_p5, "ab_psnr_mean": ab_mean, "ab_psnr_p5": ab_p5,
               "files": [str(files[i].relative_to(src)) for i in kept]}
    offsets = np.cumsum([0] + [len(j) for j in blobs]).astype(np.int64)
    arrays = {"data": np.frombuffer(b"".join(blobs), dtype=np.uint8), "offsets": offsets,
              "labels": np.asarray([labels[i] for i in kept], dtype=np.int64),
              "colorfulness": np.asarray(cfs, dtype=np.float32), "ab_hist": hist,
              "meta": np.frombuffer(json.dumps(summary).encode(), dtype=np.uint8)}

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(dst, write)
    return summary


def read_pack_meta(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes())
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"{path}: not a training pack ({e})") from None
    if meta.get("format") != PACK_FORMAT:
        raise DataError(f"{path}: not a training pack (format {meta.get('format')!r})")
    return meta


def is_pack(path: str | os.PathLike) -> bool:
    return Path(path).is_file() and Path(path).suffix == PACK_SUFFIX


def load_training_set(path: str | os.PathLike) -> Cache:
    """A pack, or a cache that `colorize prepare` wrote, as a Cache."""
    return load_pack(path) if is_pack(path) else load_cache(path)


def load_pack(path: str | os.PathLike, *, workers: int | None = None) -> Cache:
    """Decode a pack into memory (threads: Pillow decodes without the GIL) -> a Cache to train from."""
    path = Path(path)
    meta = read_pack_meta(path)
    with np.load(path, allow_pickle=False) as z:
        data, offsets = z["data"], z["offsets"]
        labels, cf, hist = z["labels"], z["colorfulness"], z["ab_hist"]
    size = meta["size"]
    images = np.empty((len(labels), size, size, 3), dtype=np.uint8)

    def decode(i: int) -> None:
        images[i] = np.asarray(Image.open(io.BytesIO(data[offsets[i]:offsets[i + 1]].tobytes())).convert("RGB"))

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        list(pool.map(decode, range(len(labels))))
    return Cache(root=path, images=images, labels=labels, colorfulness=cf, ab_hist=hist, classes=meta["classes"])
