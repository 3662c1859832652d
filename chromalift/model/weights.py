"""Weights files: safetensors plus the model config, loaded without unpickling anything; and what can be
done to weights without training (pruning the colour head, recalibrating inference settings)."""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from chromalift.io.atomic import atomic_write
from chromalift.model.config import WEIGHTS_FORMAT
from chromalift.model.config import parse as parse_config
from chromalift.model.network import ColorizationNet, ModelConfig


class CheckpointError(Exception):
    """A weights or checkpoint file that is not ours or does not fit; str() names the file."""


def clean_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip the prefixes DDP (`module.`) and torch.compile (`_orig_mod.`) add to parameter names."""
    out = {}
    for k, v in state.items():
        for prefix in ("module.", "_orig_mod."):
            while k.startswith(prefix):
                k = k[len(prefix):]
        out[k] = v
    return out


def save_weights(path: str | os.PathLike, model: ColorizationNet, *, classes: list[str] | None = None,
                 half: bool = False, info: dict | None = None) -> None:
    """Weights as safetensors; the config, class names and `info` (e.g. how they were trained) as metadata."""
    state = clean_state_dict(model.state_dict())
    state = {k: (v.half() if half and v.is_floating_point() else v).contiguous() for k, v in state.items()}
    check_finite(state, path)            # as written: float16 overflows to inf above 65504
    meta = {"format": WEIGHTS_FORMAT, "config": json.dumps(model.config.to_dict()),
            "classes": json.dumps(classes or []), "info": json.dumps(info or {})}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=meta))


def check_finite(state: dict[str, torch.Tensor], path) -> None:
    """CheckpointError naming the first tensor with a NaN or an infinity (what a diverged run leaves)."""
    bad = next((k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)
    if bad:
        raise CheckpointError(f"{path}: the weights hold NaN or infinite values (in {bad}): a diverged run's; "
                              "use an earlier checkpoint")


def read_weights_metadata(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # noqa: BLE001 (safetensors raises several exception types for a foreign file)
        raise CheckpointError(f"{path}: not a safetensors weights file ({str(e).splitlines()[0][:120]})") from None
    if meta.get("format") != WEIGHTS_FORMAT:
        raise CheckpointError(f"{path}: not chromalift weights (format {meta.get('format')!r}, expected {WEIGHTS_FORMAT!r})")
    return meta


def config_from(value, path) -> ModelConfig:
    """A ModelConfig from untrusted JSON-decoded data (model/config.py parse), or CheckpointError naming the file."""
    try:
        return parse_config(value)
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from None


def _json(meta: dict, key: str, path) -> object:
    try:
        return json.loads(meta.get(key, "null"))
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: its {key} metadata is not valid JSON") from None


def load_weights(path: str | os.PathLike) -> tuple[ColorizationNet, list[str], dict]:
    """-> (model in eval mode, float32, class names, info) from a file written by save_weights.

    The file's tensor names, shapes and kinds are checked against the config before anything is
    allocated (the model is first built on the meta device), so a foreign or hostile file costs nothing."""
    meta = read_weights_metadata(path)
    config = config_from(_json(meta, "config", path), path)
    classes, info = _json(meta, "classes", path) or [], _json(meta, "info", path) or {}
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes) or not isinstance(info, dict):
        raise CheckpointError(f"{path}: its class names or info metadata are malformed")
    with torch.device("meta"):
        expected = ColorizationNet(config).state_dict()
    with safe_open(str(path), "pt") as f:
        found = {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    if found.keys() != expected.keys():
        missing, extra = sorted(expected.keys() - found.keys()), sorted(found.keys() - expected.keys())
        raise CheckpointError(f"{path}: weights do not match their config (missing {missing[:3]}, unexpected {extra[:3]})")
    for k, t in expected.items():
        shape, dtype = found[k]
        if shape != tuple(t.shape) or dtype.startswith("F") != t.is_floating_point():
            raise CheckpointError(f"{path}: weights do not match their config: tensor {k} is {dtype} {list(shape)}, expected "
                                  f"{str(t.dtype).removeprefix('torch.')} {list(t.shape)}")
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
    check_finite(state, path)
    with torch.device("meta"):   # no random initialisation to throw away: the file's tensors are used as they are
        model = ColorizationNet(config)
    model.load_state_dict(state, assign=True)
    if any(b.is_meta for b in model.buffers()):   # buffers made in __init__ and not saved (ab bin centres)
        model = ColorizationNet(config)
        model.load_state_dict(state)
    return model.eval(), classes, info


def recalibrated(model: ColorizationNet, *, ab_gain: float | None = None, ab_temperature: float | None = None,
                 global_flip: str | None = None, coarse_blend: float | None = None) -> ColorizationNet:
    """The same weights with other inference settings (None: as they are): the chroma gain about grey, for
    ab-bin weights the annealed mean's temperature, which outputs of the global path average the photo
    with its mirror image (model.GLOBAL_FLIPS), and the share of a second local pass at the global size.
    Raises ValueError for a temperature on weights that regress a*b*, or a setting out of range."""
    if ab_temperature is not None and not model.config.ab_bins:
        raise ValueError("--ab-temperature needs weights with ab bins (--loss classify); these regress a*b*")
    given = {"ab_gain": ab_gain, "ab_temperature": ab_temperature, "global_flip": global_flip,
             "coarse_blend": coarse_blend}
    changes = {k: v for k, v in given.items() if v is not None}
    out = ColorizationNet(replace(model.config, **changes))
    out.load_state_dict(model.state_dict())
    return out.eval()


CLASSIFIER = "classification.1"   # the scene classifier's last layer: one output per class
HEAD = "colorization.layers.6"   # the colorization network's last convolution: ab, or one output per ab bin


def _head_rows(src: ModelConfig, dst: ModelConfig) -> list[int] | None:
    """The rows of src's last colour layer that make dst's, where dst predicts some of src's bins of the
    same grid; None where it does not (regression, another grid, a bin src lacks)."""
    if not src.ab_bins or src.ab_bins != dst.ab_bins:
        return None
    where = {b: i for i, b in enumerate(src.ab_keep or range(src.ab_bins ** 2))}
    wanted = dst.ab_keep or range(dst.ab_bins ** 2)
    return [where[b] for b in wanted] if all(b in where for b in wanted) else None


def _select_head(state: dict[str, torch.Tensor], rows: list[int]) -> dict[str, torch.Tensor]:
    return {k: v[rows] if k.startswith(HEAD + ".") else v for k, v in state.items()}


def pruned(model: ColorizationNet, keep: tuple[int, ...]) -> ColorizationNet:
    """The same ab-bin weights predicting only the bins in `keep` (row-major indices of their grid) that
    they predict now: a cheaper head whose annealed mean loses only the probability the other bins held.
    Raises ValueError for weights that regress a*b*."""
    c = model.config
    if not c.ab_bins:
        raise ValueError("cutting the head to the bins photos use needs weights with ab bins (--loss classify)")
    kept = sorted(set(keep) & set(c.ab_keep or range(c.ab_bins ** 2)))
    config = replace(c, ab_keep=() if len(kept) == c.ab_bins ** 2 else tuple(kept))
    out = ColorizationNet(config)
    out.load_state_dict(_select_head(model.state_dict(), _head_rows(c, config)))
    return out.eval()


def check_logit_adjust(beta: float) -> None:
    """ValueError for a logit adjustment outside [0, 1]."""
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"logit adjustment {beta}: choose 0 (as trained) to 1 (the unweighted posterior)")


def logit_adjusted(model: ColorizationNet, bin_weights: torch.Tensor, beta: float) -> ColorizationNet:
    """The same ab-bin weights with `beta` of their training's rebalancing taken back (logit adjustment,
    Menon et al. 2021): a cross-entropy that weighted bin k by w_k learns probabilities proportional to
    w_k p(k | photo), so subtracting beta log w_k from the head's bias gives p(k | photo) w_k^(1 - beta):
    beta 1 is the unweighted posterior (what plain training would aim for, from features that rebalancing
    taught rare colours), beta 0 the weights as trained. `bin_weights` (one per head output) from
    `losses.head_bin_weights`. Raises ValueError for weights that regress a*b* or a beta outside [0, 1]."""
    check_logit_adjust(beta)
    return _head_bias_shifted(model, -beta * bin_weights.clamp(min=1e-6).log(), "logit adjustment")


def check_ab_rebalance(strength: float) -> None:
    """ValueError for an inference rebalancing strength outside (0, 1]."""
    if not 0.0 < strength <= 1.0:
        raise ValueError(f"rebalancing {strength}: choose a strength in (0, 1], as for --rebalance")


def rebalanced(model: ColorizationNet, bin_weights: torch.Tensor) -> ColorizationNet:
    """The same ab-bin weights, trained without rebalancing, with each bin's probability multiplied by its
    weight w_k at inference: p(k | photo) w_k, where a cross-entropy weighted by w_k would have led
    training (Zhang et al.'s class rebalancing, reached by Bayes' rule instead of retraining). Rare,
    saturated colours then win where the photo leaves them plausible, instead of the common browns an
    uncertain pixel's distribution peaks at. `bin_weights` from `losses.head_bin_weights`."""
    return _head_bias_shifted(model, bin_weights.clamp(min=1e-6).log(), "rebalancing")


def _head_bias_shifted(model: ColorizationNet, shift: torch.Tensor, what: str) -> ColorizationNet:
    """A copy of ab-bin weights whose head bias is moved by `shift` (one per output): the head's
    probabilities times exp(shift), renormalised."""
    if not model.config.ab_bins:
        raise ValueError(f"{what} needs weights with ab bins (--loss classify); these regress a*b*")
    state = model.state_dict()
    bias = state[HEAD + ".bias"]
    if shift.shape != bias.shape:
        raise ValueError(f"{shift.numel()} bin weights for a head of {bias.numel()} bins")
    state[HEAD + ".bias"] = bias + shift.to(bias.dtype)
    out = ColorizationNet(model.config)
    out.load_state_dict(state)
    return out.eval()
