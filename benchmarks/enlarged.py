"""Validation photos enlarged, for choosing settings that only larger photos use; never the test sets.

    python benchmarks/enlarged.py ../shared/data/miniplaces/val /tmp/val512 --scale 4 --limit 300

MiniPlaces' photos are 128 px, the size the network trains at, so the local path sees them in one pass
whatever `--coarse-blend` says. Enlarged 4x (bicubic, as scans of small prints are), the default process size
(256) sees each at twice the training scale and `--coarse-blend`'s second pass at the training scale: the
case of a camera photo. Writes PNG copies of evenly spaced photos (as `colorize evaluate --limit` picks
them) under OUT, keeping class subfolders, so `colorize evaluate` and `benchmarks/chroma_gain.py` read
their labels. OUT must not exist yet.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from chromalift.io.atomic import atomic_write
from chromalift.io.photos import find_images


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", type=Path, help="a folder of photos (class subfolders allowed)")
    p.add_argument("out", type=Path, help="a new folder for the enlarged copies")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--limit", type=int, default=300)
    args = p.parse_args()
    if args.out.exists():
        p.error(f"{args.out}: exists already; name a new folder")
    photos = find_images(args.src)
    if not photos:
        p.error(f"{args.src}: no images found")
    photos = photos[:: max(1, len(photos) // args.limit)][: args.limit]
    for path in photos:
        dst = (args.out / path.relative_to(args.src)).with_suffix(".png")
        dst.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as im:
            big = im.convert("RGB").resize((im.width * args.scale, im.height * args.scale), Image.Resampling.BICUBIC)
        atomic_write(dst, lambda tmp, big=big: big.save(tmp, format="PNG"))
    print(f"{len(photos)} photos from {args.src}, enlarged {args.scale}x, in {args.out}")


if __name__ == "__main__":
    main()
