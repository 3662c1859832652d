"""Film throughput: where the time goes per batch of frames, and the whole `colorize film.mp4` run.

The network sees frames at the process size (256 px), so at film resolutions the full-size colour
conversions, not the network, decide the speed. This compares, in one run and on the same frames:
  naive: kornia's rgb_to_lab for L, lab_to_rgb for the gamut fit (companding at every bisection step),
         float -> uint8                          (what colorize() did before)
  ours:  L from an 8-bit table, the gamut fit in linear RGB, companding by table straight to uint8
and then times colorize_video end to end (decode, scan, colorize, encode, join) in frames/s.

    python benchmarks/video_speed.py [--sizes 640x480,1280x720] [--frames 48] [--batch 8]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from speed import median_time

from chromalift import Colorizer, read_photo
from chromalift.color.lab import float_to_uint8, lab_to_rgb, rgb_to_lab
from chromalift.film.run import colorize_video
from chromalift.film.synthetic import film_look, pan_zoom, to_grey, write_clip

PHOTO = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak24" / "kodim05.png"


def naive_batch(colorizer: Colorizer, frames: np.ndarray, prior: torch.Tensor) -> np.ndarray:
    """The conversions as colorize() did them before: full Lab both ways, the gamut fit in sRGB."""
    rgb = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255.0)
    l = rgb_to_lab(rgb)[:, :1]
    ab = colorizer.predict_ab(l, prior)
    raw = lab_to_rgb(torch.cat([l, ab], 1), clip=False)
    out = raw.clamp(0.0, 1.0)
    bad = ((raw < -1e-3) | (raw > 1 + 1e-3)).any(dim=1, keepdim=True)
    if bool(bad.any()):
        l_bad, ab_bad = l[bad], ab.permute(0, 2, 3, 1)[bad[:, 0]]
        lo, hi = torch.zeros_like(l_bad), torch.ones_like(l_bad)
        image = lambda s: torch.cat([l_bad[:, None], ab_bad * s[:, None]], 1).T[None, :, :, None]
        for _ in range(8):
            mid = (lo + hi) / 2
            ok = ((lambda x: (x >= -1e-3) & (x <= 1 + 1e-3))(lab_to_rgb(image(mid), clip=False)[0, :, :, 0])).all(0)
            lo, hi = torch.where(ok, mid, lo), torch.where(ok, hi, mid)
        out = out.permute(0, 2, 3, 1).clone()
        out[bad[:, 0]] = lab_to_rgb(image(lo))[0, :, :, 0].T
        out = out.permute(0, 3, 1, 2)
    return float_to_uint8(out).numpy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="640x480,1280x720")
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--photo", type=Path, default=PHOTO)
    args = p.parse_args()
    torch.set_grad_enabled(False)
    colorizer = Colorizer.load()
    photo = (read_photo(args.photo).rgb * 255).round().astype(np.uint8)
    print("| batch | naive: network + conversions (ms) | ours (ms) | speed-up | network alone (ms) | "
          "colorize film.mp4, frames/s |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            w, h = (int(v) for v in size.split("x"))
            grey = to_grey(film_look(pan_zoom(photo, args.frames, (w, h))))
            batch = np.stack(grey[:args.batch])
            prior = colorizer.prior(batch[0] / 255.0)[0]
            l = rgb_to_lab(torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255)[:, :1]
            t_net = median_time(lambda: colorizer.predict_ab(l, prior), 3)
            t_naive = median_time(lambda: naive_batch(colorizer, batch, prior), 3)
            t_ours = median_time(lambda: colorizer.colorize_batch(batch, prior), 3)
            clip = write_clip(Path(tmp) / f"{size}.mp4", grey, lossless=False)
            t = time.perf_counter()
            colorize_video(colorizer, clip, Path(tmp) / f"{size}_color.mp4", progress=False, batch=args.batch)
            fps = args.frames / (time.perf_counter() - t)
            print(f"| {size} x {args.batch} | {t_naive * 1000:.0f} | {t_ours * 1000:.0f} | "
                  f"{t_naive / t_ours:.2f}x | {t_net * 1000:.0f} | {fps:.1f} |", flush=True)


if __name__ == "__main__":
    main()
