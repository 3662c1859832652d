"""The model card's gallery: the photos where the model helps most and least against the grey baseline.

    python docs/gallery.py evaluation/results.json ../shared/data/kodak24 docs/gallery-kodak24.jpg [--model W]

Reads the per-photo scores `colorize evaluate` wrote, colorizes the 3 photos with the largest and the
3 with the smallest PSNR gain over grey (the failures), and writes rows of grey | ours | truth.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from chromalift.color.lab import grey_baseline, rgb_to_lab
from chromalift.evaluation.evaluate import comparison_grid
from chromalift.inference.colorizer import Colorizer
from chromalift.io.photos import read_photo


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results")
    p.add_argument("folder")
    p.add_argument("out")
    p.add_argument("--model")
    p.add_argument("--each", type=int, default=3)
    args = p.parse_args()
    folder = Path(args.folder)
    result = next(r for r in json.loads(Path(args.results).read_text()) if Path(r["folder"]).name == folder.name)
    ranked = sorted(result["per_photo"], key=lambda r: r["psnr"] - r["psnr_grey"], reverse=True)
    chosen = ranked[:args.each] + ranked[-args.each:]
    colorizer = Colorizer.load(args.model, device="cpu")
    rows = []
    for r in chosen:
        truth = read_photo(folder / r["name"]).u8
        grey = grey_baseline(rgb_to_lab(torch.from_numpy(truth).permute(2, 0, 1).float() / 255)[:1]).numpy()
        rows.append((grey, colorizer.colorize(grey.astype(np.float32) / 255), truth))
        print(f"{r['name']}: {r['psnr'] - r['psnr_grey']:+.2f} dB over grey")
    comparison_grid(rows).convert("RGB").save(args.out, quality=88)


if __name__ == "__main__":
    main()
