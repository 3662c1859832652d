"""Choose the inference chroma gain (`colorize weights --ab-gain`) on validation photos, never the test sets.

    python benchmarks/chroma_gain.py --model W.safetensors --data ../shared/data/miniplaces/val --limit 300

MSE training pulls uncertain pixels towards grey, so predicted a*b* come out too weak. Scaling them about
grey by a gain g trades PSNR for colour. For each g this prints the colour targets of `colorize evaluate`
(PSNR beside grey, colourfulness over the truth's, hue agreement, vegetation -> green, sky -> blue, the
chroma given to near-colourless pixels), all from one run on the same photos. For weights with ab bins
(`--loss classify`), `--temperatures` also sweeps the annealed-mean temperature
(`colorize weights --ab-temperature`): every temperature with every gain. `--global-flips off all` also
compares the global path over the photo alone with its average over the photo and its mirror image
(`colorize weights --global-flip all`); `--coarse-blends 0 0.5` compares the local path's one pass with a
second one at the global size blended in (`colorize weights --coarse-blend`: only photos larger than the
global size take it, so MiniPlaces' 128 px photos need enlarging first, e.g. `benchmarks/enlarged.py`); top-1
is reported where the photos are in class folders.
"""
from __future__ import annotations

import argparse
import itertools

from chromalift.evaluation.evaluate import evaluate
from chromalift.inference.colorizer import Colorizer
from chromalift.inference.geometry import DEFAULT_PROCESS_SIZE
from chromalift.model.config import GLOBAL_FLIPS
from chromalift.model.weights import recalibrated


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
    p.add_argument("--coarse-blends", type=float, nargs="+", help="shares of a second local pass at the global "
                   "size (default: as the weights are)")
    p.add_argument("--process-size", type=int, default=DEFAULT_PROCESS_SIZE)
    args = p.parse_args()
    colorizer = Colorizer.load(args.model, device="cpu")
    trained = colorizer.model
    print("| flip | coarse | T | gain | PSNR - grey (dB) | CF / truth | hue agreement | vegetation -> green | "
          "sky -> blue | chroma on grey truth | top-1 |\n|---|---|---|---|---|---|---|---|---|---|---|")
    settings = itertools.product(args.global_flips or [None], args.coarse_blends or [None],
                                 args.temperatures or [None], args.gains)
    for flip, coarse, temperature, gain in settings:
        try:
            colorizer.model = recalibrated(trained, ab_gain=gain, ab_temperature=temperature,
                                           global_flip=flip, coarse_blend=coarse)
        except ValueError as e:
            p.error(str(e))
        colorizer.engine = type(colorizer.engine)(colorizer.model, colorizer.device)   # re-fuse with the settings
        c = colorizer.model.config   # as the weights are where not swept
        r = evaluate(colorizer, args.data, limit=args.limit, progress=False, process_size=args.process_size)
        o, g = r["ours"], r["grey"]
        print(f"| {c.global_flip} | {c.coarse_blend:.2f} | {c.ab_temperature:.2f} | {gain:.2f} | "
              f"{o['psnr'] - g['psnr']:+.2f} | "
              f"{o['colorfulness'] / r['colorfulness_truth']:.2f} | "
              f"{o['hue_agreement']:.1%} | {o['vegetation_green']:.1%} | {o['sky_blue']:.1%} | "
              f"{o['neutral_chroma']:.1f} | {_pct(o.get('top1'))} |", flush=True)


if __name__ == "__main__":
    main()
