"""The colour conversions of the photo path in NumPy, channels last, for the NumPy engine (inference/numpy_engine.py).

The constants are defined here once, for color.py (PyTorch) too; the formulas are color.py's, step for
step and in the same precision, so the two paths agree to the rounding of their last operation (tested
against each other). Shapes: L is (H, W), ab (H, W, 2), RGB (H, W, 3).
"""
from __future__ import annotations

import numpy as np

# sRGB -> XYZ (D65) and its inverse, as kornia and most libraries write them
RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
XYZ_TO_RGB = ((3.2404813432005266, -1.5371515162713185, -0.4985363261688878),
              (-0.9692549499965682, 1.8759900014898907, 0.0415559265582928),
              (0.0556466391351772, -0.2040413383665112, 1.0573110696453443))
Y_ROW = RGB_TO_XYZ[1]                    # the Y row (D65 white has Y = 1)
EPSILON, KAPPA_SLOPE = 0.008856, 7.787   # the CIE f() threshold and slope below it
D65_WHITE = (0.95047, 1.0, 1.08883)
L_MAX = 100.0
AB_RANGE = 128.0   # a*, b* of sRGB colours lie within about [-108, 98]; 128 leaves headroom
COMPANDING_STEPS = 65536   # fine enough that an 8-bit result differs from exact companding by at most 1
# bisection steps of the gamut fit: 12 leave a colour within 1/4096 of its chroma from the gamut's edge, a
# fraction of an 8-bit level even where a channel is near 0 and the sRGB curve is steepest (8 left ~10 levels)
FIT_STEPS = 12

_tables: dict = {}


def rgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] -> linear RGB (the sRGB curve)."""
    return np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92).astype(rgb.dtype, copy=False)


def linear_to_rgb(linear: np.ndarray) -> np.ndarray:
    """Linear RGB -> sRGB (the sRGB curve's inverse)."""
    curve = 1.055 * np.maximum(linear, 0.0031308) ** (1 / 2.4) - 0.055
    return np.where(linear > 0.0031308, curve, 12.92 * linear).astype(linear.dtype, copy=False)


def _l_from_y(y: np.ndarray) -> np.ndarray:
    f = np.where(y > EPSILON, np.maximum(y, EPSILON) ** (1.0 / 3.0), KAPPA_SLOPE * y + 4.0 / 29.0)
    return (116.0 * f - 16.0).astype(y.dtype, copy=False)


def l_from_uint8(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 sRGB -> (H, W) float32 L in [0, 100], through a table of each level's share of Y."""
    if "luminance" not in _tables:
        levels = np.arange(256, dtype=np.float32) / np.float32(255.0)
        _tables["luminance"] = rgb_to_linear(levels)[None] * np.asarray(Y_ROW, np.float32)[:, None]   # (3, 256)
    t = _tables["luminance"]
    return _l_from_y(t[0][rgb[..., 0]] + t[1][rgb[..., 1]] + t[2][rgb[..., 2]])


def l_from_rgb(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) float sRGB in [0, 1] (any precision) -> (H, W) L."""
    linear = rgb_to_linear(np.clip(rgb, 0.0, 1.0))
    return _l_from_y(linear @ np.asarray(Y_ROW, rgb.dtype))


def lab_to_linear(l: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """(..., ) L and (..., 2) ab -> (..., 3) linear RGB, unclipped."""
    fy = (l + 16.0) / 116.0
    f = np.stack([fy + ab[..., 0] / 500.0, fy, np.maximum(fy - ab[..., 1] / 200.0, 0.0)], axis=-1)
    xyz_over_white = np.where(f > 0.2068966, f * f * f, (f - 4.0 / 29.0) / KAPPA_SLOPE)
    m = (np.asarray(XYZ_TO_RGB, np.float64) * np.asarray(D65_WHITE, np.float64)).astype(l.dtype)
    return xyz_over_white.astype(l.dtype, copy=False) @ m.T


def lab_to_linear_keep_l(l: np.ndarray, ab: np.ndarray, iterations: int = FIT_STEPS, tolerance: float = 1e-3) -> np.ndarray:
    """Lab -> linear RGB in [0, 1], the chroma of out-of-gamut pixels reduced (bisection on a scale of ab)
    instead of RGB clipped, so L is kept: color.lab_to_linear_keep_l."""
    low, high = -tolerance / 12.92, (1 + tolerance) ** 2.4    # sRGB [-tol, 1 + tol] in linear RGB
    linear = lab_to_linear(l, ab)
    bad = ((linear < low) | (linear > high)).any(axis=-1)
    if bad.any():
        l_bad, ab_bad = l[bad], ab[bad]                                           # (N,), (N, 2)
        lo, hi = np.zeros_like(l_bad), np.ones_like(l_bad)
        for _ in range(iterations):
            mid = (lo + hi) / 2
            lin = lab_to_linear(l_bad, ab_bad * mid[:, None])
            ok = ((lin >= low) & (lin <= high)).all(axis=-1)
            lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
        linear[bad] = lab_to_linear(l_bad, ab_bad * lo[:, None])
    return np.clip(linear, 0.0, 1.0, out=linear)


def linear_to_uint8(linear: np.ndarray) -> np.ndarray:
    """(..., 3) linear RGB -> uint8 sRGB, through a table of the sRGB companding (color.linear_to_uint8)."""
    if "companding" not in _tables:
        ramp = np.linspace(0.0, 1.0, COMPANDING_STEPS + 1, dtype=np.float32)
        _tables["companding"] = np.round(np.clip(linear_to_rgb(ramp), 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)
    idx = np.rint(np.clip(linear, 0.0, 1.0) * np.float32(COMPANDING_STEPS)).astype(np.int32)
    return _tables["companding"][idx]


def normalize_l(l: np.ndarray) -> np.ndarray:
    """L in [0, 100] -> the network's input in [-0.5, 0.5]."""
    return l / np.float32(L_MAX) - np.float32(0.5)


def unnormalize_ab(ab01: np.ndarray) -> np.ndarray:
    """Sigmoid output in [0, 1] -> ab in Lab units."""
    return (ab01 * np.float32(2.0) - np.float32(1.0)) * np.float32(AB_RANGE)
