"""What a colour hint costs the web page: one re-render with hints against one without, at 1, 6 and 12 MP.

    python benchmarks/hints_speed.py [--rounds 5] [--photo ../shared/data/kodak24/kodim05.png]

A photo (enlarged to each size) goes through the web page's Service as the page sends it: the first
render (decode, the network, the colours at full size, encoding), then re-renders of the same photo,
whose analysis the service keeps: with no hints, with 2 points, and with 2 points and a brush stroke.
Each re-render is timed end to end (hashing the upload, the hint solve, the colours at full size, JPEG
encoding, as the page asks for a JPEG photo); medians of the rounds, in one run, so ratios compare.
"""
from __future__ import annotations

import argparse
import io
import json

import numpy as np
from PIL import Image
from speed import median_time  # benchmarks/ is the script's folder, on sys.path

from chromalift.apps.web import Service
from chromalift.inference.colorizer import Colorizer


def _points(w: int, h: int) -> str:
    return json.dumps({"points": [[w // 4, h // 3, "#c82828"], [3 * w // 4, 2 * h // 3, "#28a03c"]]})


def _stroke_png(w: int, h: int) -> bytes:
    """A transparent layer of the photo's size with one brush stroke, as the page sends it."""
    strokes = np.zeros((h, w, 4), np.uint8)
    strokes[h // 2: h // 2 + max(2, h // 100), w // 5: w // 2] = (40, 80, 220, 255)
    buf = io.BytesIO()
    Image.fromarray(strokes).save(buf, format="PNG")
    return buf.getvalue()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photo", default="../shared/data/kodak24/kodim05.png")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--model")
    args = p.parse_args()
    service = Service(Colorizer.load(args.model, device="cpu"), max_upload_mb=100)
    base = Image.open(args.photo).convert("L").convert("RGB")
    print("| photo | first render | re-render, no hints | with 2 points | with 2 points and a stroke | hints / none |")
    print("|---|---|---|---|---|---|")
    for mp, (w, h) in ((1, (1224, 816)), (6, (3000, 2000)), (12, (4240, 2832))):
        buf = io.BytesIO()
        base.resize((w, h), Image.Resampling.BICUBIC).save(buf, format="JPEG", quality=90)
        data = buf.getvalue()
        service._last = None
        first = median_time(lambda d=data: (setattr(service, "_last", None), service.colorize(d, "p.jpg", fmt="jpeg")), 1, warmup=0)
        plain = median_time(lambda d=data: service.colorize(d, "p.jpg", fmt="jpeg"), args.rounds, warmup=0)
        pts, png = _points(w, h), _stroke_png(w, h)   # what the page sends; parsing and decoding them is timed
        points = median_time(lambda d=data: service.colorize(d, "p.jpg", hints=service.hints(pts, None), fmt="jpeg"),
                             args.rounds, warmup=0)
        both = median_time(lambda d=data: service.colorize(d, "p.jpg", hints=service.hints(pts, png), fmt="jpeg"),
                           args.rounds, warmup=0)
        print(f"| {mp} MP ({w}x{h}) | {first:.2f} s | {plain:.2f} s | {points:.2f} s | {both:.2f} s | "
              f"{points / plain:.2f} / {both / plain:.2f} |", flush=True)


if __name__ == "__main__":
    main()
