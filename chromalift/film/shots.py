"""Shots: where a film cuts (from each frame's change of luminance), and SteadyColour, the temporal filter
that calms colour within a shot."""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from chromalift.film.settings import CUT_RATIO, CUT_THRESHOLD
from chromalift.film.streams import Shot


@dataclass
class SteadyColour:
    """A temporal filter on the predicted ab, within a shot: where a pixel's luminance did not change
    since the frame before, its colour leans on the previous frame's colour (weight `strength`); where
    it changed (motion, a new object), the new prediction is taken as it is. This calms the colour
    'boiling' that grain causes in still areas without dragging colour across moving edges.
    Runs at the local path's resolution (cheap); reset() at every cut."""
    strength: float = 0.8   # weight of the previous frame's colour where nothing moved
    sigma: float = 3.0      # change of L (0-100, 3x3 mean) at which the weight has fallen to 1/e

    def __post_init__(self):
        self.reset()

    def reset(self) -> None:
        self._l = self._ab = None

    def __call__(self, l: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        out = []
        for i in range(l.shape[0]):   # frames in order; each leans on the filtered frame before it
            li, ab_i = l[i:i + 1], ab[i:i + 1]
            if self.strength > 0 and self._l is not None and self._l.shape == li.shape:
                change = F.avg_pool2d((li - self._l).abs(), 3, stride=1, padding=1, count_include_pad=False)
                weight = self.strength * torch.exp(-(change / self.sigma) ** 2)
                ab_i = ab_i + weight * (self._ab - ab_i)
            self._l, self._ab = li, ab_i
            out.append(ab_i)
        return torch.cat(out)


def find_cuts(scores: np.ndarray, threshold: float = CUT_THRESHOLD, ratio: float = CUT_RATIO,
              window: int = 12) -> list[int]:
    """Frames that start a new shot, from scores[i] = mean |L_i - L_(i-1)| (scores[0] is ignored).

    A cut is a change both large in itself and a spike against the motion around it (the median score
    of up to `window` frames on each side), so a fast pan, steadily large, is not cut into pieces while a
    cut after or before a calm stretch is found."""
    scores = np.asarray(scores, dtype=np.float64)
    cuts = []
    for i in range(1, len(scores)):
        if scores[i] < threshold:
            continue
        around = np.r_[scores[max(1, i - window):i], scores[i + 1:i + 1 + window]]
        if scores[i] >= ratio * (float(np.median(around)) if len(around) else 0.0):
            cuts.append(i)
    return cuts


def shots_from_cuts(cuts: list[int], frames: int) -> list[Shot]:
    bounds = [0] + list(cuts) + [frames]
    return [Shot(a, b) for a, b in itertools.pairwise(bounds) if b > a]
