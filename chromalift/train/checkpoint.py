"""Training checkpoints: self-describing, loaded with torch.load(weights_only=True) so that nothing is ever
unpickled; and starting a run from trained weights (init_from). Every write goes to a temporary file and is
renamed into place."""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import torch

from chromalift.io.atomic import atomic_write
from chromalift.model.network import INFERENCE_SETTINGS, ColorizationNet
from chromalift.model.weights import CLASSIFIER, HEAD, CheckpointError, check_finite, clean_state_dict, config_from, load_weights

# file format names, kept from before the package was renamed: every weights file and checkpoint still loads
CHECKPOINT_FORMAT = "colorizer/train-checkpoint/v1"


CHECKPOINT_FIELDS = ("model_config", "model", "optimizer", "rng", "step", "best_val")


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """A training checkpoint: tensors, numbers, strings, lists and dicts only (loadable with weights_only)."""
    state = {"format": CHECKPOINT_FORMAT, **state}
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | os.PathLike, require: tuple[str, ...] = ()) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 (a foreign file can make the unpickler raise anything)
        raise CheckpointError(f"{path}: not a readable training checkpoint ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a chromalift training checkpoint")
    missing = [k for k in require if k not in state]
    if missing:
        raise CheckpointError(f"{path}: incomplete training checkpoint (missing {', '.join(missing)})")
    return state


def model_from_checkpoint(path: str | os.PathLike) -> tuple[ColorizationNet, list[str], dict]:
    """Rebuild the model of a training checkpoint -> (model in eval mode, class names, info)."""
    state = load_checkpoint(path, require=("model_config", "model", "step"))
    model = ColorizationNet(config_from(state["model_config"], path))
    try:
        weights = clean_state_dict(state["model"])
        check_finite(weights, path)
        model.load_state_dict(weights)
    except (RuntimeError, AttributeError, TypeError) as e:
        raise CheckpointError(f"{path}: its weights do not match its config ({str(e).splitlines()[0][:160]})") from None
    info = {"step": state["step"], "train_args": state.get("args", {})}
    return model.eval(), state.get("classes", []), info


def init_from(model: ColorizationNet, path: str, classes: list[str], *, quiet: bool = False) -> None:
    """Start a training run from trained weights of the same architecture. Their inference settings
    (model.INFERENCE_SETTINGS) are not architecture, and neither are the two output layers, which start
    row by row from the weights where those know the row: the scene classifier's by class name (a
    training set that adds classes keeps what the weights learnt of the old ones) and the colour head's
    by ab bin of the same grid. Rows the weights lack keep their fresh initialisation (a new bin's bias
    starts at the weights' lowest, as rare as anything they predict); a colour head of another kind
    (regression vs bins, another grid) starts afresh. What starts afresh is said in one line (unless
    quiet: the other processes of a distributed run)."""
    init_model, init_classes, _ = load_weights(path)
    src, dst = init_model.config, model.config
    free = ("ab_bins", "ab_keep", "num_classes", "head_scale", *INFERENCE_SETTINGS)   # same layers, same shapes
    if replace(src, **{k: getattr(dst, k) for k in free}) != dst:
        raise CheckpointError(f"{path}: weights are of another model ({src.to_dict()}), not {dst.to_dict()}")
    state, own = init_model.state_dict(), model.state_dict()
    notes = []
    if src.ab_bins and src.ab_bins == dst.ab_bins:
        keys = lambda c: list(c.ab_keep or range(c.ab_bins ** 2))
        new = _map_rows(state, own, HEAD, keys(src), keys(dst), floor_bias=True)
        notes += [f"{new} of its {len(keys(dst))} ab bins"] if new else []
    elif (src.ab_bins, src.ab_keep) != (dst.ab_bins, dst.ab_keep):
        state = {k: v for k, v in state.items() if not k.startswith(HEAD + ".")}
        notes.append(f"its colour head differs (ab_bins {src.ab_bins}, not {dst.ab_bins})")
    if dst.num_classes:
        new = _map_rows(state, own, CLASSIFIER, list(init_classes) if src.num_classes else [], list(classes))
        notes += [f"{new} of its {len(classes)} scene classes"] if new else []
    fresh = sorted(k for k in own if k not in state or state[k].shape != own[k].shape)
    model.load_state_dict({k: v for k, v in state.items() if k not in fresh}, strict=not fresh)
    if fresh:
        notes.append("layers " + ", ".join(fresh))
    if notes and not quiet:
        print(f"{path}: every other layer starts from it; afresh: {'; '.join(notes)}", flush=True)


def _map_rows(state: dict[str, torch.Tensor], own: dict[str, torch.Tensor], layer: str, src_keys: list,
              dst_keys: list, *, floor_bias: bool = False) -> int:
    """Rewrite `layer`'s weight and bias in `state` (rows keyed by src_keys) as the model's rows (keyed by
    dst_keys): known rows from state, new rows from the model's own initialisation. Returns how many rows
    are new; with none known, the layer leaves `state` (it starts afresh as a whole)."""
    where = {key: i for i, key in enumerate(src_keys)}
    known = [(j, where[key]) for j, key in enumerate(dst_keys) if key in where]
    names = [f"{layer}.weight", f"{layer}.bias"]
    if not known or any(n not in state for n in names):
        for n in names:
            state.pop(n, None)
        return len(dst_keys)
    rows, from_rows = (list(t) for t in zip(*known))
    for n in names:
        out = own[n].clone()
        if floor_bias and n.endswith("bias"):
            out.fill_(float(state[n].min()))
        out[rows] = state[n][from_rows].to(out)
        state[n] = out
    return len(dst_keys) - len(known)
