"""The learning rate over a run: constant, or a linear warm-up then a cosine decay that ends exactly at the
end of the run, whether the end is a number of steps or a wall-time budget (`--minutes`)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chromalift.train.config import TrainConfig


def progress(cfg: TrainConfig, step: int, seconds: float) -> float:
    """How far the run is, in [0, 1]: by steps, or by the time budget where that comes first."""
    p = step / cfg.steps
    if cfg.minutes > 0:
        p = max(p, seconds / (60.0 * cfg.minutes))
    return min(p, 1.0)


def lr_at(cfg: TrainConfig, base: float, p: float) -> float:
    """The learning rate at progress p: constant, or warm-up then cosine decay ending exactly at p = 1."""
    if cfg.schedule == "constant":
        return base
    if cfg.schedule != "cosine":
        raise ValueError(f"unknown schedule {cfg.schedule!r}; choose constant or cosine")
    if p < cfg.warmup:
        return base * max(p / cfg.warmup, 0.01)
    t = (p - cfg.warmup) / max(1.0 - cfg.warmup, 1e-9)
    low = base * cfg.final_lr
    return low + (base - low) * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))
