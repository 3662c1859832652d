"""Colour hints: a user's points and strokes spread along the photo's own structure, on top of the network.

Levin, Lischinski & Weiss, "Colorization using Optimization" (SIGGRAPH 2004): neighbouring pixels of
similar luminance should have similar chrominance. At the processing size, with the luminance-weighted
graph Laplacian G (w_ij = exp(-(L_i - L_j)^2 / 2 sigma^2) over 4-neighbours), M = mu at hinted pixels and
a weak pull lam towards 0, one sparse symmetric positive definite system A = G + lam I + M is solved for
three right-hand sides: M 1 gives each pixel's share of the hints (alpha: about 1 at a hint, falling off
with distance and sharply at edges), and M hint_a, M hint_b the hints' colours spread by the same shares
(divided by alpha: the colour of the hints that reach a pixel). Then

    ab = (1 - s) * network + s * hint colour,   s = min(1, alpha / FULL_SHARE)

so (1) a hinted pixel takes its hint's colour, (2) a hint fills its object (Levin's propagation; on a
textured object such as a strawberry with its seeds alpha stays well below 1 inside, hence the
normalisation by FULL_SHARE) and stops at its outline, and (3) where no hint reaches, the network's
colours stay exactly as they were. The pull `lam` bounds how far a hint reaches through weak edges.
SciPy's sparse LU solves it
(a photo at the default processing size: about 49,000 unknowns).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from PIL import Image

HINT_WEIGHT = 1000.0         # mu: a hinted pixel is held to its colour (against neighbour weights of at most 1)
PULL = 1e-4                  # lam: the weak pull towards the network's colours (bounds a hint's reach)
FULL_SHARE = 0.25            # where a hint's share (alpha) reaches this, its colour replaces the network's
EDGE_SIGMA = 3.0             # sigma, in L units (0-100): a step of 10 L between neighbours passes ~0.4% as much
POINT_RADIUS = 0.03         # a point hint is a disc of this fraction of the processing size's longer side


class HintError(ValueError):
    """A hint that cannot be used; str() says which and why in one line."""


@dataclass(frozen=True)
class Hints:
    """Colour hints in the original photo's pixels: points (x, y, (r, g, b)) and/or a stroke image, an RGBA
    uint8 array of the photo's size whose opaque pixels (alpha >= 128) are colour strokes."""
    points: tuple[tuple[float, float, tuple[int, int, int]], ...] = ()
    strokes: np.ndarray | None = None

    def __bool__(self) -> bool:
        return bool(self.points) or (self.strokes is not None and bool((self.strokes[..., 3] >= 128).any()))

    def check(self, width: int, height: int) -> None:
        """HintError for a point outside a photo of this size, or a stroke image of another size."""
        for x, y, _ in self.points:
            if not (0 <= x < width and 0 <= y < height):
                raise HintError(f"hint at {x:g},{y:g} is outside the photo ({width}x{height} pixels)")
        if self.strokes is not None:
            s = self.strokes
            if s.ndim != 3 or s.shape[2] != 4 or s.dtype != np.uint8:
                raise HintError("the hint image must be RGBA (a PNG with transparency), 8 bits per channel")
            if s.shape[:2] != (height, width):
                raise HintError(f"the hint image is {s.shape[1]}x{s.shape[0]}, the photo {width}x{height}: "
                                "draw the strokes on an image of the photo's size")


_POINT = re.compile(r"^\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*,\s*#?([0-9a-fA-F]{6})\s*$")


def parse_point(text: str) -> tuple[float, float, tuple[int, int, int]]:
    """'X,Y,#RRGGBB' (pixels of the original photo) -> (x, y, (r, g, b)); HintError naming what is wrong."""
    m = _POINT.match(text)
    if not m:
        raise HintError(f"--hint {text!r}: write X,Y,#RRGGBB (pixels from the top left, a hex colour), "
                        "e.g. 120,80,#c02020")
    try:
        x, y = float(m.group(1)), float(m.group(2))
    except ValueError:
        raise HintError(f"--hint {text!r}: {m.group(1)},{m.group(2)} are not pixel coordinates") from None
    if not (np.isfinite(x) and np.isfinite(y)):
        raise HintError(f"--hint {text!r}: coordinates must be finite numbers")
    h = m.group(3)
    return x, y, (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16))


def _ab_of(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 sRGB -> (..., 2) a*b*."""
    import torch  # here, not at the top: the CLI names HintError without importing torch (the NumPy path)

    from chromalift.color.lab import rgb_to_lab, uint8_to_float
    flat = torch.from_numpy(np.ascontiguousarray(rgb.reshape(-1, 1, 3)))
    lab = rgb_to_lab(uint8_to_float(flat))                             # (3, N, 1)
    return lab[1:, :, 0].T.numpy().reshape(*rgb.shape[:-1], 2)


def targets(hints: Hints, photo: tuple[int, int], small: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Where the hints are at the processing size (ph, pw) of a photo (h, w), and their a*b* there:
    (mask (ph, pw) bool, ab (2, ph, pw) float32). Strokes are box-filtered down (a pixel is a hint where
    they cover at least half of it), points drawn as discs."""
    (h, w), (ph, pw) = photo, small
    mask, ab = np.zeros((ph, pw), bool), np.zeros((2, ph, pw), np.float32)
    if hints.strokes is not None:   # Pillow's box filter weights colour by alpha (premultiplied), in uint8
        small_rgba = np.asarray(Image.fromarray(hints.strokes, "RGBA").resize((pw, ph), Image.Resampling.BOX))
        mask = small_rgba[..., 3] >= 128
        if mask.any():
            ab[:, mask] = _ab_of(small_rgba[mask][:, :3]).T
    yy, xx = np.mgrid[0:ph, 0:pw]
    radius = max(1.0, POINT_RADIUS * max(ph, pw))
    for x, y, rgb in hints.points:
        cx, cy = (x + 0.5) * pw / w - 0.5, (y + 0.5) * ph / h - 0.5
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius ** 2
        disc[min(ph - 1, max(0, round(cy))), min(pw - 1, max(0, round(cx)))] = True   # at least its own pixel
        mask |= disc
        ab[:, disc] = _ab_of(np.array(rgb, np.uint8))[:, None]
    return mask, ab


def propagate(l_small: np.ndarray, ab_net: np.ndarray, mask: np.ndarray, ab_hint: np.ndarray, *,
              sigma: float = EDGE_SIGMA, pull: float = PULL, weight: float = HINT_WEIGHT) -> np.ndarray:
    """The network's a*b* (2, ph, pw) corrected by the hints (module docstring), from L (ph, pw) in [0, 100]."""
    from scipy.sparse import coo_matrix, diags
    from scipy.sparse.linalg import splu

    ph, pw = l_small.shape
    n = ph * pw
    index = np.arange(n).reshape(ph, pw)
    lum = l_small.astype(np.float64)
    rows, cols, wts = [], [], []
    for a, b, da in ((index[:, :-1], index[:, 1:], lum[:, :-1] - lum[:, 1:]),
                     (index[:-1, :], index[1:, :], lum[:-1, :] - lum[1:, :])):
        rows.append(a.ravel()), cols.append(b.ravel()), wts.append(np.exp(-da.ravel() ** 2 / (2 * sigma ** 2)))
    i, j, wt = np.concatenate(rows), np.concatenate(cols), np.concatenate(wts)
    adjacency = coo_matrix((np.concatenate([wt, wt]), (np.concatenate([i, j]), np.concatenate([j, i]))), shape=(n, n))
    hinted = mask.ravel().astype(np.float64) * weight
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    system = (diags(degree + pull + hinted) - adjacency).tocsc()
    rhs = hinted[:, None] * np.concatenate([np.ones((n, 1)), ab_hint.reshape(2, n).T.astype(np.float64)], axis=1)
    spread = splu(system).solve(rhs)                                    # (n, 3): alpha, alpha-weighted a*b*
    alpha = spread[:, 0].reshape(ph, pw)
    colour = spread[:, 1:].T.reshape(2, ph, pw) / np.maximum(alpha, 1e-12)   # the hints' colours where they reach
    share = np.clip(alpha / FULL_SHARE, 0.0, 1.0)
    return ((1.0 - share) * ab_net + share * colour).astype(ab_net.dtype)
