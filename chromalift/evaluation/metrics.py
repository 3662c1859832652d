"""The metrics the colorization literature reports, as pure functions on arrays (importing nothing of ours).

PSNR and SSIM on 8-bit RGB, colourfulness (Hasler & Suesstrunk 2003), the AuC of the cumulative
per-pixel ab error up to 150 (Zhang et al. 2016), and top-k scene accuracy.
"""
from __future__ import annotations

import numpy as np
import torch


def psnr_u8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images of the same shape (peak 255); inf when equal."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0 ** 2 / mse))


def ssim_u8(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM between two (H, W, 3) uint8 images: scikit-image's, Gaussian-weighted as Wang et al. (2004)."""
    from skimage.metrics import structural_similarity  # only evaluation needs scikit-image; training does not

    small = min(a.shape[0], a.shape[1])
    # scikit-image's Gaussian window spans 11 pixels; photos smaller than that get the largest odd window
    win = None if small >= 11 else max(3, small if small % 2 else small - 1)
    return float(structural_similarity(a, b, channel_axis=2, data_range=255, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False, win_size=win))


def colorfulness_u8(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness of an (H, W, 3) uint8 image."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


colorfulness = colorfulness_u8


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


# Hue metrics (hue angle = atan2(b*, a*) in degrees, in [0, 360)). Counts are pooled over a set of photos
# and divided at the end, so large photos weigh by their pixels.
STRONG_CHROMA = 15.0     # truth pixels this saturated are "strong"
COLOURED_CHROMA = 5.0    # our pixel counts as coloured above this chroma
VEGETATION = (100.0, 160.0)
SKY = (200.0, 290.0)
WARM = (30.0, 90.0)      # orange/brown: where a sepia cast lands
HUE_TOLERANCE = 30.0


def _hue_chroma(ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ab = ab.reshape(-1, 2).astype(np.float64)
    return np.degrees(np.arctan2(ab[:, 1], ab[:, 0])) % 360.0, np.hypot(ab[:, 0], ab[:, 1])


def _hue_distance(hue_a: np.ndarray, hue_b: np.ndarray) -> np.ndarray:
    """Angle between two hues in degrees, 0-180."""
    distance = np.abs(hue_a - hue_b) % 360.0
    return np.minimum(distance, 360.0 - distance)


def _within(hue: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    return (hue >= band[0]) & (hue <= band[1])


def hue_counts(ab_pred: np.ndarray, ab_true: np.ndarray) -> dict[str, float]:
    """Pixel counts behind the hue metrics for one photo; arrays are (..., 2) a*b* in Lab units."""
    hue_p, chroma_p = _hue_chroma(ab_pred)
    hue_t, chroma_t = _hue_chroma(ab_true)
    strong = chroma_t > STRONG_CHROMA
    coloured = chroma_p > COLOURED_CHROMA
    distance = _hue_distance(hue_p, hue_t)
    veg, sky = strong & _within(hue_t, VEGETATION), strong & _within(hue_t, SKY)
    neutral = chroma_t < COLOURED_CHROMA
    return {"strong": int(strong.sum()), "agree": int((strong & coloured & (distance <= HUE_TOLERANCE)).sum()),
            "vegetation": int(veg.sum()), "vegetation_green": int((veg & coloured & _within(hue_p, VEGETATION)).sum()),
            "sky": int(sky.sum()), "sky_blue": int((sky & coloured & _within(hue_p, SKY)).sum()),
            "neutral": int(neutral.sum()), "neutral_chroma": float(chroma_p[neutral].sum()),
            "coloured": int(coloured.sum()), "coloured_warm": int((coloured & _within(hue_p, WARM)).sum()),
            "truth_coloured": int((chroma_t > COLOURED_CHROMA).sum()),
            "truth_warm": int(((chroma_t > COLOURED_CHROMA) & _within(hue_t, WARM)).sum())}


def hue_scores(counts: dict[str, float]) -> dict[str, float]:
    """Pooled counts -> hue agreement, vegetation -> green, sky -> blue (shares of strong truth pixels),
    mean chroma we give near-colourless truth (chroma < 5), and the warm (30-90 degree) share of coloured
    pixels, ours and the truth's. A share with nothing to count is NaN."""
    def share(a: str, b: str) -> float:
        return counts[a] / counts[b] if counts[b] else float("nan")
    return {"hue_agreement": share("agree", "strong"), "vegetation_green": share("vegetation_green", "vegetation"),
            "sky_blue": share("sky_blue", "sky"), "neutral_chroma": share("neutral_chroma", "neutral"),
            "warm_share": share("coloured_warm", "coloured"), "warm_share_truth": share("truth_warm", "truth_coloured")}


def add_counts(total: dict[str, float], counts: dict[str, float]) -> dict[str, float]:
    return {k: total.get(k, 0) + v for k, v in counts.items()}


def frame_flicker(frames_ab: list[np.ndarray] | np.ndarray, shots: list | None = None) -> dict:
    """Flicker of a colorized clip: the mean absolute change of ab between consecutive frames of a shot
    (`pixel`, Lab units, per pixel) and of the frame-mean ab (`mood`, the global colour cast). `shots`:
    anything with a .start frame (video.Shot)."""
    ab = [np.asarray(a, dtype=np.float32) for a in frames_ab]
    same_shot = [True] * len(ab)
    for s in shots or []:
        same_shot[s.start] = False
    pix, mood = [], []
    for i in range(1, len(ab)):
        if same_shot[i]:
            pix.append(float(np.abs(ab[i] - ab[i - 1]).mean()))
            mood.append(float(np.abs(ab[i].mean((0, 1)) - ab[i - 1].mean((0, 1))).mean()))
    return {"pixel": float(np.mean(pix)) if pix else 0.0, "mood": float(np.mean(mood)) if mood else 0.0}
