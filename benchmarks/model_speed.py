"""The colour issue's speed budget: `Colorizer.colorize` on a 1024 x 768 photo with several weights, in one run.

    python benchmarks/model_speed.py --models v6.safetensors v7c.safetensors [--photo P] [--repeats 7]

Each set of weights runs on the same photo through the fused PyTorch engine (`Colorizer`, what the library
and folders use) and the NumPy path (`NumpyColorizer`, what `colorize PHOTO` uses for one photo), interleaved
round by round so that the machine's noise falls on all alike. Reported: the best time of each, its ratio to
the first model's best, and the median over rounds of the ratio within each round (paired: a slow spell
of the shared machine slows both sides of a round, so this ratio is the steadier of the two). The budget:
at most 1.5x the shipped model's.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from chromalift.inference.colorizer import Colorizer
from chromalift.inference.numpy_engine import NumpyColorizer
from chromalift.io.photos import find_images


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", required=True, help="weights; the first is the reference")
    p.add_argument("--photo", help="a photo, resized to 1024 x 768 (default: the first MiniPlaces validation photo)")
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    photo = args.photo or find_images(Path("../shared/data/miniplaces/val"))[0]
    rgb = np.asarray(Image.open(photo).convert("RGB").resize((1024, 768), Image.Resampling.BICUBIC))
    engines = {(m, kind): load(m, device="cpu") if kind == "torch" else load(m)
               for m in args.models for kind, load in (("torch", Colorizer.load), ("numpy", NumpyColorizer.load))}
    for engine in engines.values():            # warm-up, not counted
        engine.colorize(rgb)
    rounds = []
    for _ in range(args.repeats):
        times = {}
        for key, engine in engines.items():
            start = time.perf_counter()
            engine.colorize(rgb)
            times[key] = time.perf_counter() - start
        rounds.append(times)
    first = args.models[0]
    best = {key: min(r[key] for r in rounds) for key in engines}
    print("| weights | engine | best s | best vs the first | median paired ratio |\n|---|---|---|---|---|")
    for model, kind in engines:
        paired = statistics.median(r[(model, kind)] / r[(first, kind)] for r in rounds)
        print(f"| {model} | {kind} | {best[(model, kind)]:.3f} | {best[(model, kind)] / best[(first, kind)]:.2f}x "
              f"| {paired:.2f}x |")


if __name__ == "__main__":
    main()
