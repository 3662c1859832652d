"""The training losses: the paper's MSE on normalised ab (optionally rebalanced), or Zhang et al.'s
cross-entropy over ab bins, plus alpha x the scene classification cross-entropy."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .color import normalize_ab
from .data import ab_bin_index


def ab_bin_targets(ab: torch.Tensor, bins: int) -> torch.Tensor:
    """(B, 2, h, w) ab in Lab units -> (B, h, w) index of its bin in the model's bins x bins grid."""
    idx = (normalize_ab(ab) * bins).long().clamp_(0, bins - 1)
    return idx[:, 0] * bins + idx[:, 1]


def ab_bin_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, Q, h, w) bin logits and (B, h, w) bin indices -> (B, 1, h, w) per-pixel cross-entropy (in float32).

    The bins as the last axis: a view of channels_last logits, so no transposing copy of 63 million numbers
    forwards and backwards (benchmarks/loss_speed.py)."""
    b, q, h, w = logits.shape
    flat = logits.permute(0, 2, 3, 1).reshape(-1, q).float()
    return F.cross_entropy(flat, target.reshape(-1), reduction="none").view(b, 1, h, w)


def compute_loss(model, l, ab, labels, *, alpha: float, ab_weights: torch.Tensor | None, ab_bins: int = 0):
    """-> (total loss, colour loss (MSE, or cross-entropy over ab bins), classification CE or None, logits)."""
    pred, logits = model(l)
    if ab_bins:
        se = ab_bin_cross_entropy(pred, ab_bin_targets(ab, ab_bins))
    else:
        se = (pred.float() - normalize_ab(ab)) ** 2                # (B, 2, h, w)
    if ab_weights is not None:
        se = se * ab_weights[ab_bin_index(ab)][:, None]
    mse = se.mean()
    ce = None
    if logits is not None and bool((labels >= 0).any()):
        ce = F.cross_entropy(logits.float(), labels, ignore_index=-1)
    return (mse + alpha * ce if ce is not None else mse), mse, ce, logits
