"""sRGB <-> CIE L*a*b* (D65) and the normalisation of L and ab, defined once.

Callers see physical units: L in [0, 100] and a*, b* in Lab units. Only the network sees the
normalised values: L/100 - 0.5 as input, and ab mapped to [0, 1] for the Sigmoid output.
The conversion itself is kornia's (sRGB companding, D65 white), tested against scikit-image.
"""
from __future__ import annotations

import kornia.color
import torch

L_MAX = 100.0
# a*, b* of sRGB colours lie within about [-108, 98]; 128 leaves headroom and keeps 0 (grey) at 0.5.
AB_RANGE = 128.0


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) sRGB in [0, 1] -> (..., 3, H, W) Lab with L in [0, 100]."""
    return kornia.color.rgb_to_lab(rgb.clamp(0.0, 1.0))


def lab_to_rgb(lab: torch.Tensor, *, clip: bool = True) -> torch.Tensor:
    """(..., 3, H, W) Lab -> sRGB, out-of-gamut colours clipped to [0, 1] unless clip=False."""
    return kornia.color.lab_to_rgb(lab, clip=clip)


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
