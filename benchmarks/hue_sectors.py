"""Where hue agreement is won and lost: the strong truth pixels by hue sector, for several models.

    python benchmarks/hue_sectors.py --models v1.safetensors shipped --data ../shared/data/kodak24

`colorize evaluate` pools hue agreement over all strong truth pixels (chroma > 15), so a set whose strong
pixels are mostly orange and yellow rewards a model that paints everything warm. This splits the pool into
twelve 30-degree sectors of the truth's hue (0 = red, 90 = yellow, 135 = green, 270 = blue in a*b*) and
prints, per model and sector: the sector's share of the strong pixels, the share we agree with (our chroma
> 5, hue within 30 degrees, as in `colorize evaluate`) and the share we leave near grey (chroma <= 5).
Photos are coloured as `colorize evaluate` colours them (their greyscale, process size 256); `--limit`
takes evenly spaced photos of a large set.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from chromalift.color.lab import grey_baseline, rgb_to_lab
from chromalift.evaluation.evaluate import _ab
from chromalift.evaluation.metrics import COLOURED_CHROMA, HUE_TOLERANCE, STRONG_CHROMA, _hue_chroma, _hue_distance
from chromalift.inference.colorizer import Colorizer
from chromalift.io.photos import find_images, read_photo

SECTORS = 12


def sector_counts(ab_pred: np.ndarray, ab_true: np.ndarray) -> np.ndarray:
    """(3, SECTORS) counts of strong truth pixels per truth-hue sector: all, agreed, left near grey."""
    hue_p, chroma_p = _hue_chroma(ab_pred)
    hue_t, chroma_t = _hue_chroma(ab_true)
    strong = chroma_t > STRONG_CHROMA
    sector = (hue_t[strong] // (360 / SECTORS)).astype(int)
    distance = _hue_distance(hue_p[strong], hue_t[strong])
    coloured = chroma_p[strong] > COLOURED_CHROMA
    counts = np.zeros((3, SECTORS))
    for row, mask in enumerate((np.ones_like(coloured), coloured & (distance <= HUE_TOLERANCE), ~coloured)):
        np.add.at(counts[row], sector, mask)
    return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", required=True, help="weights files, or 'shipped'")
    p.add_argument("--data", required=True, help="colour photos")
    p.add_argument("--limit", type=int, default=300)
    args = p.parse_args()
    photos = find_images(Path(args.data))
    photos = photos[:: max(1, len(photos) // args.limit)][:args.limit]
    inputs = []
    for path in photos:
        lab = rgb_to_lab(torch.from_numpy(read_photo(path).u8).permute(2, 0, 1).float() / 255)
        inputs.append((grey_baseline(lab[:1]).numpy().astype(np.float32) / 255, lab[1:].permute(1, 2, 0).numpy()))
    print(f"{args.data}: {len(inputs)} photos; per sector of the truth's hue (degrees in a*b*)\n")
    print("| model | row | " + " | ".join(str(i * 360 // SECTORS) for i in range(SECTORS)) + " | all |")
    print("|---|---|" + "---|" * (SECTORS + 1))
    for name in args.models:
        colorizer = Colorizer.load(None if name == "shipped" else name, device="cpu")
        counts = sum(sector_counts(_ab(colorizer.colorize(grey)), ab) for grey, ab in inputs)
        total = counts[0].sum()
        rows = {"share": (counts[0] / total, 1.0), "agree": (counts[1] / np.maximum(counts[0], 1), counts[1].sum() / total),
                "near grey": (counts[2] / np.maximum(counts[0], 1), counts[2].sum() / total)}
        for row, (values, pooled) in rows.items():
            cells = " | ".join(f"{v:.0%}" for v in values)
            print(f"| {Path(name).stem} | {row} | {cells} | {pooled:.1%} |")


if __name__ == "__main__":
    main()
