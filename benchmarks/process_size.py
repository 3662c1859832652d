"""Which size should the local path see? Measured on held-out training-domain photos, never the test sets.

    python benchmarks/process_size.py --val ../shared/data/miniplaces/val [--model W] [--count 100]

MiniPlaces validation photos (128 px) are enlarged 4x and 8x (512 and 1024 px, as scans of old prints
are) and colorized with the local path capped at several sizes; colour is always added back at full
size. Reported: PSNR against the enlarged truth, colourfulness against the truth's, and seconds per photo.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from PIL import Image

from chromalift.evaluation.metrics import colorfulness, psnr_u8
from chromalift.inference.colorizer import Colorizer
from chromalift.io.photos import find_images


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--val", default="../shared/data/miniplaces/val")
    p.add_argument("--model")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--sizes", default="128,256,384,512,0", help="process sizes to compare (0 = the photo's own)")
    args = p.parse_args()
    col = Colorizer.load(args.model)
    photos = find_images(__import__("pathlib").Path(args.val))
    photos = photos[:: max(1, len(photos) // args.count)][: args.count]
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{len(photos)} photos from {args.val}\n")
    print("| enlarged to | process size | PSNR (dB) | CF ours / truth | s per photo |\n|---|---|---|---|---|")
    for scale in (4, 8):
        truths = []
        for path in photos:
            im = Image.open(path).convert("RGB")
            truths.append(np.asarray(im.resize((im.width * scale, im.height * scale), Image.Resampling.BICUBIC)))
        greys = [np.repeat(np.asarray(Image.fromarray(t).convert("L"), np.float32)[..., None] / 255, 3, 2) for t in truths]
        cf_truth = np.mean([colorfulness(t) for t in truths])
        for size in sizes:
            t0 = time.perf_counter()
            outs = [col.colorize(g, process_size=size or None) for g in greys]
            dt = (time.perf_counter() - t0) / len(outs)
            psnr = np.mean([psnr_u8(o, t) for o, t in zip(outs, truths)])
            cf = np.mean([colorfulness(o) for o in outs])
            print(f"| {128 * scale} px | {size or 'own'} | {psnr:.2f} | {cf:.1f} / {cf_truth:.1f} | {dt:.2f} |")


if __name__ == "__main__":
    main()
