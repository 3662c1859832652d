"""The metrics the colorization literature reports, as pure functions on arrays.

PSNR and SSIM on 8-bit RGB, colourfulness (Hasler & Suesstrunk 2003), the AuC of the cumulative
per-pixel ab error up to 150 (Zhang et al. 2016), and top-k scene accuracy.
"""
from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import structural_similarity

from .data import colorfulness_u8


def psnr_u8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images of the same shape (peak 255); inf when equal."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0 ** 2 / mse))


def ssim_u8(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM between two (H, W, 3) uint8 images: scikit-image's, Gaussian-weighted as Wang et al. (2004)."""
    small = min(a.shape[0], a.shape[1])
    # scikit-image's Gaussian window spans 11 pixels; photos smaller than that get the largest odd window
    win = None if small >= 11 else max(3, small if small % 2 else small - 1)
    return float(structural_similarity(a, b, channel_axis=2, data_range=255, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False, win_size=win))


colorfulness = colorfulness_u8  # Hasler & Suesstrunk (2003) on (H, W, 3) uint8; defined beside the data code


def ab_error_auc(ab_pred: np.ndarray, ab_true: np.ndarray, max_error: float = 150.0, steps: int = 151) -> float:
    """Area under the curve of the fraction of pixels whose ab error (L2, Lab units) is within t,
    for t from 0 to max_error, normalised to [0, 1] (Zhang et al. 2016). Arrays are (..., 2)."""
    err = np.sqrt(((ab_pred.astype(np.float64) - ab_true.astype(np.float64)) ** 2).sum(-1)).ravel()
    thresholds = np.linspace(0.0, max_error, steps)
    err.sort()
    within = np.searchsorted(err, thresholds, side="right") / err.size
    return float(np.trapezoid(within, thresholds) / max_error)


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, k: int) -> int:
    """How many rows of (B, C) logits have their label among the k highest scores (labels < 0 skipped)."""
    valid = labels >= 0
    if not valid.any():
        return 0
    top = logits[valid].topk(min(k, logits.shape[1]), dim=1).indices
    return int((top == labels[valid, None]).any(dim=1).sum())
