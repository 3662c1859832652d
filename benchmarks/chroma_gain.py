"""Choose the inference chroma gain (`colorize weights --ab-gain`) on validation photos, never the test sets.

    python benchmarks/chroma_gain.py --model W.safetensors --data ../shared/data/miniplaces/val --limit 300

MSE training pulls uncertain pixels towards grey, so predicted a*b* come out too weak. Scaling them about
grey by a gain g trades PSNR for colour. For each g this prints the colour targets of `colorize evaluate`
(PSNR beside grey, colourfulness over the truth's, hue agreement, vegetation -> green, sky -> blue, the
chroma given to near-colourless pixels), all from one run on the same photos. For weights with ab bins
(`--loss classify`), `--temperatures` also sweeps the annealed-mean temperature
(`colorize weights --ab-temperature`): every temperature with every gain. `--global-flips off all` also
compares the global path over the photo alone with its average over the photo and its mirror image
(`colorize weights --global-flip all`); top-1 is reported where the photos are in class folders.
"""
from __future__ import annotations

import argparse

from chromalift.checkpoint import recalibrated
from chromalift.evaluate import evaluate
from chromalift.inference import Colorizer
from chromalift.model import GLOBAL_FLIPS


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="weights (default: the shipped model)")
    p.add_argument("--data", required=True, help="validation photos (class subfolders allowed)")
    p.add_argument("--limit", type=int, default=300)
    p.add_argument("--gains", type=float, nargs="+", default=[1.0, 1.2, 1.4, 1.6, 1.8])
    p.add_argument("--temperatures", type=float, nargs="+", help="annealed-mean temperatures (ab-bin weights only)")
    p.add_argument("--global-flips", choices=GLOBAL_FLIPS, nargs="+",
                   help="which outputs of the global path average the photo with its mirror image: none (off), the "
                   "scene scores (scenes), the scores and the colour prior (all); "
                   "default: as the weights are (`colorize weights --global-flip`)")
    args = p.parse_args()
    colorizer = Colorizer.load(args.model, device="cpu")
    trained = colorizer.model
    print("| flip | T | gain | PSNR - grey (dB) | CF / truth | hue agreement | vegetation -> green | sky -> blue | "
          "chroma on grey truth | top-1 |\n|---|---|---|---|---|---|---|---|---|---|")
    settings = ((f, t, g) for f in args.global_flips or [None] for t in args.temperatures or [None] for g in args.gains)
    for flip, temperature, gain in settings:
        try:
            colorizer.model = recalibrated(trained, ab_gain=gain, ab_temperature=temperature,
                                           global_flip=flip)
        except ValueError as e:
            p.error(f"--temperatures: {e}")
        colorizer.engine = type(colorizer.engine)(colorizer.model, colorizer.device)   # re-fuse with the settings
        t_used = colorizer.model.config.ab_temperature   # as trained where not swept
        r = evaluate(colorizer, args.data, limit=args.limit, progress=False)
        o, g = r["ours"], r["grey"]
        print(f"| {colorizer.model.config.global_flip} | {t_used:.2f} | {gain:.2f} | {o['psnr'] - g['psnr']:+.2f} | "
              f"{o['colorfulness'] / r['colorfulness_truth']:.2f} | "
              f"{o['hue_agreement']:.1%} | {o['vegetation_green']:.1%} | {o['sky_blue']:.1%} | "
              f"{o['neutral_chroma']:.1f} | {_pct(o.get('top1'))} |", flush=True)


if __name__ == "__main__":
    main()
