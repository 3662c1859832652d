"""Flicker of colorized film: one global prior per shot vs. one per frame (what a photo colorizer does).

Clips with known truth are made from colour photos (colorizer.synthetic): a static shot and a slow
pan/zoom, each with film grain and exposure flicker, turned grey, then colorized both ways. Flicker is
the mean absolute change of ab between consecutive frames, per pixel and of the frame mean (the colour
mood); the colour truth's own change is the floor that motion alone causes.

    python benchmarks/flicker.py [PHOTO ...] [--frames 48] [--size 384x256] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from chromalift import Colorizer, read_photo
from chromalift.color.lab import rgb_to_lab
from chromalift.evaluation.metrics import psnr_u8
from chromalift.film.run import colorize_video, frame_flicker, read_frames
from chromalift.film.synthetic import film_look, pan_zoom, to_grey, write_clip

DEFAULT_PHOTOS = [Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak24" / f"kodim{i:02d}.png"
                  for i in (3, 5, 14, 23)]


def ab_of(frames: list[np.ndarray]) -> list[np.ndarray]:
    rgb = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255
    return list(rgb_to_lab(rgb)[:, 1:].permute(0, 2, 3, 1).numpy())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photos", nargs="*", type=Path, default=DEFAULT_PHOTOS)
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--size", default="384x256")
    p.add_argument("--model", help="weights; default: the shipped model")
    p.add_argument("--json", type=Path)
    p.add_argument("--steady", type=float, default=0.8, help="SteadyColour strength for the third mode")
    args = p.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    colorizer = Colorizer.load(args.model)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for photo in args.photos:
            rgb = (read_photo(photo).rgb * 255).round().astype(np.uint8)
            for motion in ("static", "pan/zoom"):
                truth = film_look(pan_zoom(rgb, args.frames, size, static=motion == "static"), seed=1)
                clip = write_clip(Path(tmp) / "clip.mp4", to_grey(truth), audio_hz=None)
                row = {"photo": photo.name, "motion": motion, "truth": frame_flicker(ab_of(truth))}
                for mode in ("frame", "shot", "steady"):
                    t = time.perf_counter()
                    result = colorize_video(colorizer, clip, Path(tmp) / f"{mode}.mp4",
                                            prior_mode="frame" if mode == "frame" else "shot",
                                            steady=args.steady if mode == "steady" else 0.0,
                                            progress=False, overwrite=True)
                    seconds = time.perf_counter() - t
                    frames = read_frames(result.output)
                    row[mode] = frame_flicker(ab_of(frames)) | {
                        "psnr": float(np.mean([psnr_u8(a, b) for a, b in zip(frames, truth)])),
                        "frames_per_s": len(frames) / seconds, "shots": len(result.shots)}
                rows.append(row)
                print(f"{photo.name:12s} {motion:8s} " + " | ".join(
                    f"{m}: pixel {row[m]['pixel']:.3f} mood {row[m]['mood']:.3f}"
                    + (f" PSNR {row[m]['psnr']:.2f}" if m != "truth" else "")
                    for m in ("frame", "shot", "steady", "truth")), flush=True)
    names = {"frame": "one prior per frame", "shot": "one prior per shot",
             "steady": f"per shot + SteadyColour {args.steady}", "truth": "colour truth"}
    print("\n| clip | mode | pixel flicker | vs per frame | mood flicker | vs per frame | PSNR (dB) |")
    print("|---|---|---|---|---|---|---|")
    for motion in ("static", "pan/zoom"):
        sel = [r for r in rows if r["motion"] == motion]
        mean = lambda mode, key: float(np.mean([r[mode][key] for r in sel]))
        for mode in ("frame", "shot", "steady", "truth"):
            psnr = f"{mean(mode, 'psnr'):.2f}" if mode != "truth" else ""
            print(f"| {motion} ({len(sel)} x {args.frames} frames) | {names[mode]} | {mean(mode, 'pixel'):.3f} | "
                  f"{mean('frame', 'pixel') / mean(mode, 'pixel'):.2f}x | {mean(mode, 'mood'):.3f} | "
                  f"{mean('frame', 'mood') / mean(mode, 'mood'):.2f}x | {psnr} |")
    fps = np.mean([r["shot"]["frames_per_s"] for r in rows])
    print(f"\nthroughput, per-shot mode incl. decode, scan and encode: {fps:.1f} frames/s at {args.size}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
