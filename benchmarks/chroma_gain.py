"""Choose the inference chroma gain (`colorize weights --ab-gain`) on validation photos, never the test sets.

    python benchmarks/chroma_gain.py --model W.safetensors --data ../shared/data/miniplaces/val --limit 300

MSE training pulls uncertain pixels towards grey, so predicted a*b* come out too weak. Scaling them about
grey by a gain g trades PSNR for colour. For each g this prints the colour targets of `colorize evaluate`
(PSNR beside grey, colourfulness over the truth's, hue agreement, vegetation -> green, sky -> blue, the
chroma given to near-colourless pixels), all from one run on the same photos. For weights with ab bins
(`--loss classify`), `--temperatures` also sweeps the annealed-mean temperature
(`colorize weights --ab-temperature`): every temperature with every gain.
"""
from __future__ import annotations

import argparse

from chromalift.checkpoint import recalibrated
from chromalift.evaluate import evaluate
from chromalift.inference import Colorizer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="weights (default: the shipped model)")
    p.add_argument("--data", required=True, help="validation photos (class subfolders allowed)")
    p.add_argument("--limit", type=int, default=300)
    p.add_argument("--gains", type=float, nargs="+", default=[1.0, 1.2, 1.4, 1.6, 1.8])
    p.add_argument("--temperatures", type=float, nargs="+", help="annealed-mean temperatures (ab-bin weights only)")
    args = p.parse_args()
    colorizer = Colorizer.load(args.model, device="cpu")
    trained = colorizer.model
    print("| T | gain | PSNR - grey (dB) | CF / truth | hue agreement | vegetation -> green | sky -> blue | "
          "chroma on grey truth |\n|---|---|---|---|---|---|---|---|")
    for temperature, gain in ((t, g) for t in args.temperatures or [None] for g in args.gains):
        try:
            colorizer.model = recalibrated(trained, ab_gain=gain, ab_temperature=temperature)
        except ValueError as e:
            p.error(f"--temperatures: {e}")
        colorizer.engine = type(colorizer.engine)(colorizer.model, colorizer.device)   # re-fuse with the settings
        t_used = colorizer.model.config.ab_temperature   # as trained where not swept
        r = evaluate(colorizer, args.data, limit=args.limit, progress=False)
        o, g = r["ours"], r["grey"]
        print(f"| {t_used:.2f} | {gain:.2f} | {o['psnr'] - g['psnr']:+.2f} | {o['colorfulness'] / r['colorfulness_truth']:.2f} | "
              f"{o['hue_agreement']:.1%} | {o['vegetation_green']:.1%} | {o['sky_blue']:.1%} | "
              f"{o['neutral_chroma']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
