"""One photo without PyTorch, for a cold start (importing torch costs more than a small photo's whole run):
the NumPy network (model/numpy_network.py) with the same resampling as PyTorch's (bilinear, antialiased
when shrinking) and the same colour finish (color/lab_np.py), so the output is the PyTorch engine's
within one 8-bit level and the scene classes are the same (tested). load_colorizer picks it for a single
photo on the CPU, or always with `--backend numpy`; films, hints, training and GPUs are PyTorch's.
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chromalift.color import lab_np as C
from chromalift.inference.geometry import (
    BAND_PIXELS,
)
from chromalift.inference.photo import PhotoColorizer
from chromalift.model.config import DEFAULT_WEIGHTS, WEIGHTS_FORMAT
from chromalift.model.config import parse as parse_config
from chromalift.model.numpy_network import NumpyNet


def _check_settings(config, path: Path) -> None:
    """The config through ModelConfig's own checks (model/config.py parse, the torch path's too), or NumpyWeightsError:
    wrong values would give wrong colours here, not an error."""
    try:
        parse_config(config)
    except (TypeError, ValueError) as e:
        raise NumpyWeightsError(f"{path}: its model config holds settings this version cannot use ({e})") from None


# ---------------------------------------------------------------- resampling, as torch.nn.functional.interpolate

def _taps(n_in: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear resizing of a length n_in to n (align_corners=False, PyTorch's float32 coordinates): for each
    output, its two inputs and the second one's weight."""
    src = np.maximum((np.arange(n, dtype=np.float32) + np.float32(0.5)) * np.float32(n_in / n) - np.float32(0.5), 0.0)
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    return i0, np.minimum(i0 + 1, n_in - 1), src - i0


def _bilinear(x: np.ndarray, n: int, axis: int) -> np.ndarray:
    """Resize one axis to n, bilinear with align_corners=False (PyTorch's, no antialiasing)."""
    if x.shape[axis] == n:
        return x
    i0, i1, lam = _taps(x.shape[axis], n)
    lam = lam.astype(x.dtype).reshape((-1,) + (1,) * (x.ndim - axis - 1))
    return x.take(i0, axis) * (1 - lam) + x.take(i1, axis) * lam


def _shrink(x: np.ndarray, n: int, axis: int) -> np.ndarray:
    """Shrink one axis to n as PyTorch's antialiased bilinear does (Pillow's triangle filter, which torch
    ported): output i averages the inputs within `scale` of its centre, tap by tap, so memory stays the
    output's whatever the input's length."""
    n_in = x.shape[axis]
    scale = n_in / n
    centre = scale * (np.arange(n) + 0.5)
    lo = np.maximum((centre - scale + 0.5).astype(np.int64), 0)
    hi = np.minimum((centre + scale + 0.5).astype(np.int64), n_in)
    shape = (-1,) + (1,) * (x.ndim - axis - 1)
    out, total = None, np.zeros(n)
    for k in range(int((hi - lo).max())):
        j = np.minimum(lo + k, n_in - 1)
        w = np.where(lo + k < hi, np.maximum(0.0, 1.0 - np.abs((j - centre + 0.5) / scale)), 0.0)
        total += w
        term = x.take(j, axis) * w.astype(np.float32).reshape(shape)
        out = term if out is None else out + term
    return out / total.astype(np.float32).reshape(shape)


def resize(l: np.ndarray, size: tuple[int, int], *, antialias: bool) -> np.ndarray:
    """(H, W) -> size, as F.interpolate(mode="bilinear", align_corners=False, antialias=antialias)."""
    for axis, n in enumerate(size):
        if antialias and n < l.shape[axis]:
            l = _shrink(l, n, axis)
        else:   # growing, antialiased or not, is plain bilinear
            l = _bilinear(l, n, axis)
    return l


# ---------------------------------------------------------------- the photo path

class NumpyWeightsError(ValueError):
    """A weights file this path cannot use; the message is one line naming the file."""


@dataclass
class NumpyColorizer(PhotoColorizer):
    """PhotoColorizer's methods (prior, colorize, colorize_and_classify) on NumPy arrays: no torch import."""
    net: NumpyNet
    classes: list[str] = field(default_factory=list)
    name: str = "the shipped model"

    @classmethod
    def load(cls, weights: str | os.PathLike | None = None) -> NumpyColorizer:
        from safetensors import safe_open
        path = Path(weights or DEFAULT_WEIGHTS)
        try:
            with safe_open(str(path), "np") as f:
                meta = f.metadata() or {}
                if meta.get("format") != WEIGHTS_FORMAT:
                    raise NumpyWeightsError(f"{path}: not chromalift weights (format {meta.get('format')!r})")
                state = {k: f.get_tensor(k).astype(np.float32) for k in f.keys()}  # noqa: SIM118 (not iterable)
            bad = next((k for k, v in state.items() if not np.isfinite(v).all()), None)
            if bad:
                raise NumpyWeightsError(f"{path}: the weights hold NaN or infinite values (in {bad}): a diverged run's; "
                                "use an earlier checkpoint")
            config, classes = json.loads(meta["config"]), json.loads(meta.get("classes", "[]"))
            _check_settings(config, path)
            net = NumpyNet.from_state(config, state)
            prior, _ = net.global_prior(np.zeros((config.get("global_size", 224),) * 2, np.float32))
            net.local_ab(np.zeros((8, 8), np.float32), prior)    # tensors that do not fit fail here, not later
        except Exception as e:  # noqa: BLE001 (safetensors, json and NumPy raise several kinds for a foreign file)
            raise NumpyWeightsError(e.args[0] if isinstance(e, NumpyWeightsError) else
                            f"{path}: not a usable weights file ({str(e).splitlines()[0][:120]})") from None
        return cls(net, classes, path.name if weights else "the shipped model")

    # ---- PhotoColorizer's primitives on NumPy arrays (H, W) and (H, W, 2)
    def _setting(self, key: str):
        return self.net.config.get(key, {"global_size": 224, "coarse_blend": 0.0}[key])

    def _size(self, l: np.ndarray) -> tuple[int, int]:
        return l.shape

    def _resize(self, l: np.ndarray, size: tuple[int, int], *, antialias: bool) -> np.ndarray:
        return resize(l, size, antialias=antialias)

    def _small(self, l: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        h, w = l.shape
        return resize(l.astype(np.float32), size, antialias=size[0] * size[1] < h * w)

    def _global_prior(self, l_global: np.ndarray, *, scores: bool):
        return self.net.global_prior(C.normalize_l(l_global), scores=scores)

    @staticmethod
    def _l(rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 or float in [0, 1] -> (H, W) L, in bands of rows (the temporaries stay small)."""
        h, w = rgb.shape[:2]
        l = np.empty((h, w), np.float32 if rgb.dtype == np.uint8 else rgb.dtype)
        rows = max(1, BAND_PIXELS // w)

        def band(r0: int) -> None:
            part = rgb[r0:r0 + rows]
            l[r0:r0 + rows] = C.l_from_uint8(part) if rgb.dtype == np.uint8 else C.l_from_rgb(part)
        _each_band(band, h, rows)
        return l

    def _local_pass(self, small: np.ndarray, prior: np.ndarray) -> np.ndarray:
        ph, pw = small.shape
        x = np.pad(C.normalize_l(small), ((0, -ph % 8), (0, -pw % 8)), mode="edge")
        ab = C.unnormalize_ab(self.net.local_ab(x, prior))
        ab = _bilinear(_bilinear(ab, x.shape[0], 0), x.shape[1], 1)
        return ab[:ph, :pw]

    def _blend(self, ab: np.ndarray, ab_coarse: np.ndarray, share: float) -> np.ndarray:
        ab_coarse = _bilinear(_bilinear(ab_coarse, ab.shape[0], 0), ab.shape[1], 1)
        return ab + np.float32(share) * (ab_coarse - ab)

    def _render(self, l: np.ndarray, ab_small: np.ndarray, *, bits: int, hints=None) -> np.ndarray:
        if hints:
            raise ValueError("colour hints run on the PyTorch engine (load_colorizer(..., hints=True))")
        return finish(l, ab_small, bits=bits)

    def _probabilities(self, logits: np.ndarray) -> list[float]:
        p = np.exp(logits - logits.max())
        p /= p.sum()
        return [float(v) for v in p]


def finish(l: np.ndarray, ab_small: np.ndarray, *, bits: int = 8) -> np.ndarray:
    """inference.finish: full-size L and the small ab -> (H, W, 3) sRGB uint8 (or uint16), band by band."""
    h, w = l.shape
    out = np.empty((h, w, 3), dtype=np.uint16 if bits == 16 else np.uint8)
    rows = max(1, BAND_PIXELS // w)
    y0, y1, wy = _taps(ab_small.shape[0], h)          # the rows' taps, computed once for every band

    def band(r0: int) -> None:
        r = slice(r0, min(h, r0 + rows))
        lam = wy[r, None, None]
        ab = _bilinear(ab_small[y0[r]] * (1 - lam) + ab_small[y1[r]] * lam, w, 1)
        if bits == 16:
            linear = C.lab_to_linear_keep_l(l[r].astype(np.float64), ab.astype(np.float64), 16, 1e-6)
            out[r] = (np.clip(C.linear_to_rgb(linear), 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)
        else:
            out[r] = C.linear_to_uint8(C.lab_to_linear_keep_l(l[r], ab))

    _each_band(band, h, rows)
    return out


def _each_band(fn, h: int, rows: int) -> None:
    """fn(r0) for the bands of `rows` rows, on every core (NumPy lets go of the GIL; torch has its own threads)."""
    starts = range(0, h, rows)
    if len(starts) == 1:
        fn(0)
        return
    with ThreadPoolExecutor(min(len(starts), os.cpu_count() or 1)) as pool:
        list(pool.map(fn, starts))   # list(): a band's exception is raised here
