"""Saving and loading: shipped weights as safetensors + config, training state as self-describing checkpoints.

Nothing is ever unpickled: weights load with safetensors, training checkpoints with
torch.load(weights_only=True). Every write goes to a temporary file and is renamed into place.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from safetensors import safe_open

from .files import atomic_write
from .model import ColorizationNet, ModelConfig

WEIGHTS_FORMAT = "colorizer/iizuka2016/v1"
CHECKPOINT_FORMAT = "colorizer/train-checkpoint/v1"


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
    meta = {"format": WEIGHTS_FORMAT, "config": json.dumps(model.config.to_dict()),
            "classes": json.dumps(classes or []), "info": json.dumps(info or {})}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=meta))


def read_weights_metadata(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises several exception types for a foreign file
        raise CheckpointError(f"{path}: not a safetensors weights file ({str(e).splitlines()[0][:120]})") from None
    if meta.get("format") != WEIGHTS_FORMAT:
        raise CheckpointError(f"{path}: not colorizer weights (format {meta.get('format')!r}, expected {WEIGHTS_FORMAT!r})")
    return meta


def load_weights(path: str | os.PathLike) -> tuple[ColorizationNet, list[str], dict]:
    """-> (model in eval mode, float32, class names, info) from a file written by save_weights."""
    meta = read_weights_metadata(path)
    config = ModelConfig(**json.loads(meta["config"]))
    model = ColorizationNet(config)
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not match their config ({str(e).splitlines()[0]})") from None
    return model.eval(), json.loads(meta["classes"]), json.loads(meta["info"])


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """A training checkpoint: tensors, numbers, strings, lists and dicts only (loadable with weights_only)."""
    state = {"format": CHECKPOINT_FORMAT, **state}
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable training checkpoint ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a colorizer training checkpoint")
    return state


def model_from_checkpoint(path: str | os.PathLike) -> tuple[ColorizationNet, list[str], dict]:
    """Rebuild the model of a training checkpoint -> (model in eval mode, class names, info)."""
    state = load_checkpoint(path)
    model = ColorizationNet(ModelConfig(**state["model_config"]))
    model.load_state_dict(clean_state_dict(state["model"]))
    info = {"step": state["step"], "train_args": state.get("args", {})}
    return model.eval(), state.get("classes", []), info

