"""`colorize weights`: shippable weights from a training checkpoint, or other inference settings for weights."""
from __future__ import annotations

import argparse
from pathlib import Path

from chromalift.cli.common import fail
from chromalift.io.atomic import already_exists
from chromalift.io.names import one_line


def _parser() -> argparse.ArgumentParser:
    from chromalift.model.config import GLOBAL_FLIPS  # not model/network.py: --help needs no torch

    p = argparse.ArgumentParser(prog="colorize weights", description="Turn a training checkpoint into weights for "
                                "colorize, or give weights other inference settings (the source is never changed).",
                                epilog="""examples:
  colorize weights runs/mine/last.pt mine.safetensors --half --ab-gain 1.1
  colorize weights shipped fast.safetensors --global-flip off       the shipped model without the mirror pass
  colorize weights runs/rebalanced/last.pt w.safetensors --half --ab-logit-adjust 1   take back --rebalance
  colorize weights runs/mine/last.pt bold.safetensors --half --ab-rebalance 0.1     rarer colours at inference""",
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
    p.add_argument("--coarse-blend", type=float, metavar="W", help="where the local path sees a photo larger "
                   "than the global size, run it once more at that size (the scale the network trained at) and "
                   "blend this share (0-1) of its colours in (default: as the source has it, 0 for a checkpoint)")
    p.add_argument("--ab-keep-from", metavar="DATA", help="for weights with ab bins: predict only the bins that "
                   "the colours of DATA (the training cache or pack) fall in, a cheaper head")
    p.add_argument("--ab-logit-adjust", type=float, metavar="BETA", help="for ab-bin weights trained with "
                   "--rebalance: take back this share (0-1) of the bias it gave rare colours (logit adjustment; 1: "
                   "the unweighted posterior), computed from the training photos")
    p.add_argument("--ab-rebalance", type=float, metavar="S", help="for ab-bin weights trained without "
                   "--rebalance: weight each bin's probability at inference as --rebalance S would have weighted "
                   "it in training (0-1; Zhang et al.'s class rebalancing without retraining): bolder, rarer "
                   "colours for some PSNR, computed from the training photos")
    p.add_argument("--rebalance-data", metavar="DATA", help="--ab-logit-adjust, --ab-rebalance: the training "
                   "cache or pack "
                   "(default: the path the weights record)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file (never the source)")
    return p


def cmd_weights(argv: list[str]) -> int:
    from chromalift.model.config import DEFAULT_WEIGHTS
    from chromalift.model.weights import CheckpointError, load_weights, pruned, recalibrated, save_weights
    from chromalift.train.checkpoint import model_from_checkpoint
    from chromalift.train.data.cache import DataError
    from chromalift.train.data.pack import load_training_set
    from chromalift.train.losses import used_ab_bins

    args = _parser().parse_args(argv)
    source = DEFAULT_WEIGHTS if args.source == "shipped" else Path(args.source)
    out = Path(args.out)
    if out.exists() and source.exists() and out.resolve() == source.resolve():
        return fail(f"{out}: is the source; write the new weights to another file")
    if out.exists() and not args.overwrite:
        return fail(already_exists(out))
    try:
        half = args.half
        if source.suffix == ".safetensors":
            model, classes, info = load_weights(source)
            half = half or _stored_half(source)
        else:
            model, classes, info = model_from_checkpoint(source)
        model = recalibrated(model, ab_gain=args.ab_gain, ab_temperature=args.ab_temperature,
                             global_flip=args.global_flip, coarse_blend=args.coarse_blend)
        if args.ab_logit_adjust is not None or args.ab_rebalance is not None:   # before any cut: the run's bins
            model, info = _prior_adjusted(model, info, args.ab_logit_adjust, args.ab_rebalance, args.rebalance_data)
        if args.ab_keep_from:
            photos, bins = load_training_set(args.ab_keep_from).images, model.config.ab_bins
            model = pruned(model, used_ab_bins(photos, bins) if bins else ())
        save_weights(out, model, classes=classes, half=half, info=info)
    except (CheckpointError, DataError, OSError) as e:
        return fail(str(e))
    except ValueError as e:   # an inference setting these weights cannot take
        return fail(f"{args.source}: {e}")
    print(f"wrote {one_line(out)}" + (f" (step {info['step']})" if "step" in info else ""))
    return 0


def _prior_adjusted(model, info: dict, beta: float | None, strength: float | None, data: str | None):
    """The weights with `beta` of their --rebalance taken back, or rebalanced at inference with `strength`,
    and their info saying so. ValueError where they cannot take it: a*b* regression, adjusted already, or
    trained otherwise than the option needs."""
    from chromalift.model.weights import check_ab_rebalance, check_logit_adjust, logit_adjusted, rebalanced
    from chromalift.train.data.pack import load_training_set
    from chromalift.train.losses import head_bin_weights

    if beta is not None and strength is not None:
        raise ValueError("--ab-logit-adjust takes back a training's --rebalance, --ab-rebalance adds one to "
                         "weights trained without it: choose one")
    if strength is None:                     # the value first: before reading the training photos
        check_logit_adjust(beta)
    else:
        check_ab_rebalance(strength)
    trained, c = info.get("train_args", {}), model.config
    done = {k: info[k] for k in ("ab_logit_adjust", "ab_rebalance") if k in info}
    if done:
        raise ValueError(f"these weights are adjusted already ({done}); start from the training checkpoint")
    if not c.ab_bins:
        raise ValueError("--ab-logit-adjust and --ab-rebalance need ab-bin weights (--loss classify); these "
                         "regress a*b*")
    if strength is None and not trained.get("rebalance"):
        raise ValueError("--ab-logit-adjust takes back --rebalance; these weights were not trained so")
    if strength is not None and trained.get("rebalance"):
        raise ValueError(f"these weights were trained with --rebalance {trained['rebalance']}: move from it "
                         "with --ab-logit-adjust")
    if not (data or trained.get("data")):
        raise ValueError("no training photos recorded in these weights: give --rebalance-data")
    cache = load_training_set(data or trained["data"])
    weights = head_bin_weights(cache.images, cache.ab_hist, float(trained["rebalance"]) if strength is None
                               else strength, c.ab_bins, c.ab_keep)
    if strength is None:
        return logit_adjusted(model, weights, beta), {**info, "ab_logit_adjust": beta}
    return rebalanced(model, weights), {**info, "ab_rebalance": strength}


def _stored_half(path: Path) -> bool:
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        return any(f.get_slice(k).get_dtype() == "F16" for k in f.keys())  # noqa: SIM118 (safe_open is not iterable)

