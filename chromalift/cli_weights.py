"""`colorize weights`: shippable weights from a training checkpoint, or other inference settings for weights."""
from __future__ import annotations

import argparse
from pathlib import Path

from .cli import _fail
from .files import already_exists


def _parser() -> argparse.ArgumentParser:
    from .defaults import GLOBAL_FLIPS  # not model.py: --help needs no torch

    p = argparse.ArgumentParser(prog="colorize weights", description="Turn a training checkpoint into weights for "
                                "colorize, or give weights other inference settings (the source is never changed).",
                                epilog="""examples:
  colorize weights runs/mine/last.pt mine.safetensors --half --ab-gain 1.1
  colorize weights shipped fast.safetensors --global-flip off       the shipped model without the mirror pass""",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="a training checkpoint (last.pt, best.pt), a weights file (.safetensors), or "
                   "'shipped' (the shipped model)")
    p.add_argument("out", help="weights file to write (.safetensors)")
    p.add_argument("--half", action="store_true", help="store in float16 (half the size; a float16 source stays so)")
    p.add_argument("--ab-gain", type=float, help="scale the predicted a*b* about grey by this at inference (a "
                   "calibration chosen on validation photos; default: as the source has it, 1 for a checkpoint)")
    p.add_argument("--ab-temperature", type=float, help="annealed-mean temperature for weights with ab bins "
                   "(--loss classify): lower gives bolder colours (default: as the source has it, 0.38 as trained)")
    p.add_argument("--global-flip", choices=GLOBAL_FLIPS, help="run the small global path on the photo's mirror "
                   "image too and average: for the scene scores, or for the scores and the colour prior "
                   "(default: as the source has it, off for a checkpoint)")
    p.add_argument("--ab-keep-from", metavar="DATA", help="for weights with ab bins: predict only the bins that "
                   "the colours of DATA (the training cache or pack) fall in, a cheaper head")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file (never the source)")
    return p


def cmd_weights(argv: list[str]) -> int:
    from .checkpoint import CheckpointError, load_weights, model_from_checkpoint, pruned, recalibrated, save_weights
    from .data import DataError
    from .defaults import DEFAULT_WEIGHTS
    from .losses import used_ab_bins
    from .pack import load_training_set

    args = _parser().parse_args(argv)
    source = DEFAULT_WEIGHTS if args.source == "shipped" else Path(args.source)
    out = Path(args.out)
    if out.exists() and source.exists() and out.resolve() == source.resolve():
        return _fail(f"{out}: is the source; write the new weights to another file")
    if out.exists() and not args.overwrite:
        return _fail(already_exists(out))
    try:
        half = args.half
        if source.suffix == ".safetensors":
            model, classes, info = load_weights(source)
            half = half or _stored_half(source)
        else:
            model, classes, info = model_from_checkpoint(source)
        model = recalibrated(model, ab_gain=args.ab_gain, ab_temperature=args.ab_temperature,
                             global_flip=args.global_flip)
        if args.ab_keep_from:
            photos, bins = load_training_set(args.ab_keep_from).images, model.config.ab_bins
            model = pruned(model, used_ab_bins(photos, bins) if bins else ())
        save_weights(out, model, classes=classes, half=half, info=info)
    except (CheckpointError, DataError, OSError) as e:
        return _fail(str(e))
    except ValueError as e:   # an inference setting these weights cannot take
        return _fail(f"{args.source}: {e}")
    print(f"wrote {out}" + (f" (step {info['step']})" if "step" in info else ""))
    return 0


def _stored_half(path: Path) -> bool:
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        return any(f.get_slice(k).get_dtype() == "F16" for k in f.keys())  # noqa: SIM118 (safe_open is not iterable)

