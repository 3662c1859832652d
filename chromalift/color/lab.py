"""sRGB <-> CIE L*a*b* (D65) and the normalisation of L and ab, defined once.

Callers see physical units: L in [0, 100] and a*, b* in Lab units. Only the network sees the
normalised values: L/100 - 0.5 as input, and ab mapped to [0, 1] for the Sigmoid output.
The conversion is the standard one (IEC 61966-2-1 sRGB companding, sRGB primaries, D65 white, with
kornia's constants), written here in plain PyTorch so that training needs nothing beyond torch (a
rented GPU machine may have no kornia); it is tested against scikit-image and kornia. Two fast paths
serve inference, where full-resolution conversions otherwise cost more than the network
(measured on 720p film frames: rgb_to_lab 1.1 s and the Lab -> sRGB gamut fit 1.7 s per 8 frames, the
network 0.4 s): `l_from_uint8` computes only L, through a 256-entry table of the sRGB linearisation,
and `lab_to_linear_rgb` stops before the sRGB companding, so that the gamut fit works in linear RGB and
companding runs once. Both are tested against the full conversions.
"""
from __future__ import annotations

import torch

from chromalift.color.lab_np import (
    AB_RANGE,
    COMPANDING_STEPS,
    D65_WHITE,
    EPSILON,
    FIT_STEPS,
    KAPPA_SLOPE,
    L_MAX,
    RGB_TO_XYZ,
    XYZ_TO_RGB,
    Y_ROW,
)


def rgb_to_linear_rgb(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> linear RGB (the sRGB curve)."""
    return torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).pow(2.4), rgb / 12.92)


def linear_rgb_to_rgb(linear: torch.Tensor) -> torch.Tensor:
    """Linear RGB -> sRGB (the sRGB curve's inverse)."""
    return torch.where(linear > 0.0031308, 1.055 * linear.clamp(min=0.0031308).pow(1 / 2.4) - 0.055,
                       12.92 * linear)


def _matrix(rows, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(rows, dtype=like.dtype if like.is_floating_point() else torch.float32, device=like.device)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) sRGB in [0, 1] -> (..., 3, H, W) Lab with L in [0, 100]."""
    linear = rgb_to_linear_rgb(rgb.clamp(0.0, 1.0))
    xyz = torch.einsum("ij,...jhw->...ihw", _matrix(RGB_TO_XYZ, linear), linear)
    xyz = xyz / _matrix(D65_WHITE, xyz)[:, None, None]
    f = torch.where(xyz > EPSILON, xyz.clamp(min=EPSILON).pow(1.0 / 3.0), KAPPA_SLOPE * xyz + 4.0 / 29.0)
    fx, fy, fz = f.unbind(-3)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)


def lab_to_rgb(lab: torch.Tensor, *, clip: bool = True) -> torch.Tensor:
    """(..., 3, H, W) Lab -> sRGB, out-of-gamut colours clipped to [0, 1] unless clip=False."""
    rgb = linear_rgb_to_rgb(lab_to_linear_rgb(lab))
    return rgb.clamp(0.0, 1.0) if clip else rgb


_tables: dict = {}   # lookup tables, per device


def _luminance_tables(device: torch.device) -> torch.Tensor:
    """(3, 256): each 8-bit sRGB level's linear value times its channel's weight in Y."""
    if device not in _tables:
        levels = torch.arange(256, dtype=torch.float32).div(255.0).expand(3, 1, 256)
        linear = rgb_to_linear_rgb(levels)[:, 0]                                  # (3, 256)
        _tables[device] = (linear * torch.tensor(Y_ROW)[:, None]).to(device)
    return _tables[device]


def l_from_uint8(rgb_u8: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) uint8 sRGB -> (B, 1, H, W) L in [0, 100]: rgb_to_lab(...)[:, :1] without a and b."""
    t = _luminance_tables(rgb_u8.device)
    idx = rgb_u8.long()
    return _l_from_y(t[0][idx[..., 0]] + t[1][idx[..., 1]] + t[2][idx[..., 2]])[:, None]


def l_from_rgb(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) float sRGB in [0, 1] (any precision) -> (B, 1, H, W) L: rgb_to_lab(...)[:, :1]."""
    linear = rgb_to_linear_rgb(rgb.clamp(0.0, 1.0))
    weights = torch.tensor(Y_ROW, device=rgb.device, dtype=rgb.dtype)
    return _l_from_y(torch.einsum("c,bchw->bhw", weights, linear))[:, None]


def _l_from_y(y: torch.Tensor) -> torch.Tensor:
    f = torch.where(y > EPSILON, y.clamp(min=EPSILON).pow(1.0 / 3.0), KAPPA_SLOPE * y + 4.0 / 29.0)
    return 116.0 * f - 16.0


def _xyz_to_linear_matrix(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The XYZ -> linear RGB matrix times the D65 white (Lab's f() inverse gives XYZ over the white)."""
    key = (device, dtype, "xyz")
    if key not in _tables:   # computed in float64 on the CPU, then cast (MPS has no float64)
        m = torch.tensor(XYZ_TO_RGB, dtype=torch.float64)
        _tables[key] = (m * torch.tensor(D65_WHITE, dtype=torch.float64)).to(dtype).to(device)
    return _tables[key]


def lab_to_linear_rgb(lab: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) Lab -> linear RGB, unclipped: lab_to_rgb(clip=False) before its companding."""
    l, a, b = lab.unbind(-3)
    fy = (l + 16.0) / 116.0
    f = torch.stack([fy + a / 500.0, fy, (fy - b / 200.0).clamp(min=0.0)], dim=-3)
    xyz_over_white = torch.where(f > 0.2068966, f * f * f, (f - 4.0 / 29.0) / KAPPA_SLOPE)
    return torch.einsum("ij,...jhw->...ihw", _xyz_to_linear_matrix(lab.device, lab.dtype), xyz_over_white)


def linear_to_uint8(linear: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) linear RGB -> (..., H, W, 3) uint8 sRGB: a table of the sRGB companding."""
    key = (linear.device, "companding")
    if key not in _tables:
        ramp = torch.linspace(0.0, 1.0, COMPANDING_STEPS + 1).expand(3, 1, -1)
        _tables[key] = float_to_uint8(linear_rgb_to_rgb(ramp))[0, :, 0].to(linear.device)   # (steps + 1,)
    idx = linear.movedim(-3, -1).clamp(0.0, 1.0).mul(COMPANDING_STEPS).round_().int()   # int32: half the traffic
    return _tables[key][idx]


def normalize_l(l: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] -> network input centred on 0, in [-0.5, 0.5]."""
    return l / L_MAX - 0.5


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """ab in Lab units -> [0, 1], the range of the network's Sigmoid output."""
    return (ab / AB_RANGE + 1.0) * 0.5


def unnormalize_ab(ab01: torch.Tensor) -> torch.Tensor:
    """Sigmoid output in [0, 1] -> ab in Lab units."""
    return (ab01 * 2.0 - 1.0) * AB_RANGE


def uint8_to_float(rgb_u8: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) or (H, W, 3) uint8 -> (B, 3, H, W) or (3, H, W) float in [0, 1]."""
    return rgb_u8.movedim(-1, -3).float().div_(255.0)


def float_to_uint8(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) float in [0, 1] -> (..., H, W, 3) uint8, rounded."""
    return rgb.clamp(0.0, 1.0).mul(255.0).round_().to(torch.uint8).movedim(-3, -1)


def grey_baseline(l: torch.Tensor) -> torch.Tensor:
    """(..., 1, H, W) L -> (..., H, W, 3) uint8 sRGB with a* = b* = 0: the grey baseline that every
    colorization is measured beside (evaluate, validation, the user study)."""
    ab = l.new_zeros(l.shape[:-3] + (2,) + l.shape[-2:])
    return float_to_uint8(lab_to_rgb(torch.cat([l, ab], -3)))


# ---------------------------------------------------------------- the gamut fit: colour without touching L

def lab_to_uint8_keep_l(l: torch.Tensor, ab: torch.Tensor, iterations: int = FIT_STEPS) -> torch.Tensor:
    """(B, 1, H, W) L and (B, 2, H, W) ab -> (B, H, W, 3) uint8 sRGB, L kept (lab_to_linear_keep_l)."""
    return linear_to_uint8(lab_to_linear_keep_l(l, ab, iterations))


def lab_to_linear_keep_l(l: torch.Tensor, ab: torch.Tensor, iterations: int = FIT_STEPS,
                         tolerance: float = 1e-3) -> torch.Tensor:
    """Lab -> linear RGB in [0, 1], reducing the chroma of out-of-gamut pixels (bisection on a scale of
    ab) instead of clipping RGB, which would change their luminance. The gamut test and the bisection run
    in linear RGB: the sRGB curve maps [0, 1] onto itself, so companding is needed only once, at the end."""
    low, high = -tolerance / 12.92, (1 + tolerance) ** 2.4    # sRGB [-tol, 1 + tol] in linear RGB
    linear = lab_to_linear_rgb(torch.cat([l, ab], 1))
    bad = ((linear < low) | (linear > high)).any(dim=1)                              # (B, H, W)
    if bool(bad.any()):
        flat = lambda t: t.movedim(1, 0).reshape(t.shape[1], -1)                     # (C, B*H*W); a view for B = 1
        where = bad.flatten().nonzero()[:, 0]                                        # (N,)
        l_bad, ab_bad = flat(l)[0, where], flat(ab)[:, where]                        # (N,), (2, N)
        lo, hi = torch.zeros_like(l_bad), torch.ones_like(l_bad)
        as_image = lambda scale: torch.cat([l_bad[None], ab_bad * scale], 0)[None, :, :, None]   # (1, 3, N, 1)
        for _ in range(iterations):
            mid = (lo + hi) / 2
            lin_mid = lab_to_linear_rgb(as_image(mid))[0, :, :, 0]                 # (3, N)
            ok = ((lin_mid >= low) & (lin_mid <= high)).all(dim=0)
            lo = torch.where(ok, mid, lo)
            hi = torch.where(ok, hi, mid)
        fitted = lab_to_linear_rgb(as_image(lo))[0, :, :, 0]                       # (3, N)
        if linear.shape[0] == 1:
            linear.view(3, -1)[:, where] = fitted
        else:
            merged = flat(linear)
            merged[:, where] = fitted
            linear = merged.reshape(3, *bad.shape).movedim(0, 1).contiguous()
    return linear.clamp_(0.0, 1.0)
