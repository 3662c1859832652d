"""The PyTorch Colorizer: photo.py's methods on tensors, the paper's two paths run by an engine (fused eager
PyTorch or ONNX Runtime). The predicted ab are upsampled to the full size and combined with the photo's own
full-resolution L; where a predicted colour falls out of the sRGB gamut its chroma is reduced rather than
its RGB clipped, so the output's L is the input's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from chromalift.color.lab import (
    l_from_rgb,
    l_from_uint8,
    lab_to_linear_keep_l,
    lab_to_uint8_keep_l,
    linear_rgb_to_rgb,
    normalize_l,
    unnormalize_ab,
)
from chromalift.inference.device import pick_device
from chromalift.inference.engines import TorchEngine, make_engine
from chromalift.inference.geometry import BAND_PIXELS, DEFAULT_PROCESS_SIZE
from chromalift.inference.hints import Hints, propagate
from chromalift.inference.hints import targets as hint_targets
from chromalift.inference.photo import PhotoColorizer
from chromalift.model.config import DEFAULT_WEIGHTS
from chromalift.model.network import ColorizationNet
from chromalift.model.weights import load_weights


@dataclass(frozen=True)
class Analysis:
    """What the network made of one photo: its full-size L (1, 1, H, W), the predicted a*b* at the
    processing size (1, 2, ph, pw) and the scene scores (or None)."""
    l: torch.Tensor
    ab_small: torch.Tensor
    logits: torch.Tensor | None
    l_small: torch.Tensor     # L at the processing size (1, 1, ph, pw), as the local path saw it


@dataclass
class Colorizer(PhotoColorizer):
    """A loaded model on a device, with what came with its weights: the photo methods of PhotoColorizer on
    torch tensors, run by an engine (fused eager PyTorch, or ONNX Runtime), plus what only this engine
    offers: colour hints, analyse/render, and batches of film frames."""
    model: ColorizationNet
    device: torch.device
    classes: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    engine: object = None   # runs the two paths; default: fused eager PyTorch
    name: str = "custom"    # the weights' file name, for what is written into outputs

    def __post_init__(self):
        self.model = self.model.to(self.device).eval()
        if self.engine is None:
            self.engine = TorchEngine(self.model, self.device)

    @classmethod
    def load(cls, weights: str | Path | None = None, *, device: str = "auto", backend: str = "auto") -> Colorizer:
        """Weights written by `save_weights` (default: the model that ships with the package).

        backend: 'auto' or 'torch' (fused eager PyTorch, the fastest measured), or 'onnx' (ONNX Runtime)."""
        dev = pick_device(device)
        model, classes, info = load_weights(weights or DEFAULT_WEIGHTS)
        model = model.to(dev).eval()
        name = Path(weights).name if weights else "the shipped model"
        return cls(model, dev, classes, info, make_engine(model, dev, backend), name)

    # ---- PhotoColorizer's primitives on tensors (1, C, H, W)
    def _setting(self, key: str):
        return getattr(self.model.config, key)

    def _size(self, l: torch.Tensor) -> tuple[int, int]:
        return tuple(l.shape[-2:])

    @torch.no_grad()
    def _resize(self, l: torch.Tensor, size: tuple[int, int], *, antialias: bool) -> torch.Tensor:
        return F.interpolate(l, size=tuple(size), mode="bilinear", antialias=antialias, align_corners=False)

    @torch.no_grad()
    def _global_prior(self, l_global: torch.Tensor, *, scores: bool):
        return self.engine.global_prior(normalize_l(l_global), scores=scores)

    @torch.no_grad()
    def _l(self, rgb: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 (through a table: the same L, faster; docs/speed.md) or float in [0, 1] -> (1, 1, H, W) L."""
        if rgb.dtype == np.uint8:   # in bands of rows, so that the table's int64 indices stay small
            u8 = torch.from_numpy(np.require(rgb, requirements=("W", "C")))   # a flipped view is copied
            h, w = u8.shape[:2]
            l = torch.empty((1, 1, h, w), device=self.device)
            rows = max(1, BAND_PIXELS // w)
            for r0 in range(0, h, rows):
                l[:, :, r0:r0 + rows] = l_from_uint8(u8[None, r0:r0 + rows].to(self.device))
            return l
        return l_from_rgb(torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device).permute(2, 0, 1)[None].float())

    @torch.no_grad()
    def _local_pass(self, l_small: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """(B, 1, ph, pw) L -> (B, 2, ph, pw) ab from one pass of the local path (sides padded to a multiple of 8)."""
        ph, pw = l_small.shape[-2:]
        x = F.pad(normalize_l(l_small), (0, -pw % 8, 0, -ph % 8), mode="replicate")   # (B, 1, ph+, pw+)
        ab01 = self.engine.local_ab(x, prior.expand(l_small.shape[0], -1)).to(l_small.device)   # (B, 2, ph+/2, pw+/2)
        ab = F.interpolate(unnormalize_ab(ab01), size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)
        return ab[:, :, :ph, :pw]

    @torch.no_grad()
    def _blend(self, ab: torch.Tensor, ab_coarse: torch.Tensor, share: float) -> torch.Tensor:
        return torch.lerp(ab, F.interpolate(ab_coarse, size=tuple(ab.shape[-2:]), mode="bilinear", align_corners=False),
                          share)

    @torch.no_grad()
    def _render(self, l: torch.Tensor, ab_small: torch.Tensor, *, bits: int, hints: Hints | None = None) -> np.ndarray:
        if hints:
            ab_small = with_hints(l, ab_small, hints)
        return finish(l, ab_small, bits=bits)

    def _probabilities(self, logits: torch.Tensor) -> list[float]:
        return torch.softmax(logits.float()[0], dim=0).tolist()

    # ---- this engine's own
    @torch.no_grad()
    def predict_ab(self, l: torch.Tensor, prior: torch.Tensor, *, process_size: int | None = DEFAULT_PROCESS_SIZE,
                   ab_filter=None) -> torch.Tensor:
        """(B, 1, H, W) L in [0, 100] and a (B or 1, C) prior -> (B, 2, H, W) ab in Lab units, at full size."""
        h, w = l.shape[-2:]
        ab = self.predict_ab_small(l, prior, process_size=process_size, ab_filter=ab_filter)
        if ab.shape[-2:] != (h, w):
            ab = F.interpolate(ab, size=(h, w), mode="bilinear", align_corners=False)
        return ab

    @torch.no_grad()
    def analyse(self, rgb: np.ndarray, *, prior: torch.Tensor | None = None,
                process_size: int | None = DEFAULT_PROCESS_SIZE) -> Analysis:
        """The network's part of colorize_and_classify, kept for `render`: a photo re-rendered with other
        colour hints (the web page) runs neither the network nor the Lab conversion again."""
        l = self._l(rgb)
        own_prior, logits = self._prior_from_l(l)
        ab_small = self.predict_ab_small(l, own_prior if prior is None else prior, process_size=process_size)
        return Analysis(l, ab_small, logits, small_l(l, ab_small.shape[-2:]))

    @torch.no_grad()
    def render(self, analysis: Analysis, *, hints: Hints | None = None, bits: int = 8) -> np.ndarray:
        """An analysed photo's colours (as colorize), with `hints` if given."""
        ab_small = with_hints(analysis.l, analysis.ab_small, hints, analysis.l_small) if hints else analysis.ab_small
        return finish(analysis.l, ab_small, bits=bits)

    @torch.no_grad()
    def colorize_batch(self, frames: np.ndarray, prior: torch.Tensor, *,
                       process_size: int | None = DEFAULT_PROCESS_SIZE, ab_filter=None) -> np.ndarray:
        """(B, H, W, 3) uint8 frames of one size and a (B or 1, C) prior -> (B, H, W, 3) uint8 colorized,
        in one pass of the local path (the video path: all frames of a shot share its prior)."""
        l = l_from_uint8(torch.from_numpy(frames).to(self.device))
        ab = self.predict_ab(l, prior.to(self.device), process_size=process_size, ab_filter=ab_filter)
        return lab_to_uint8_keep_l(l, ab).cpu().numpy()


def small_l(l: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """L (1, 1, H, W) at the processing size, as predict_ab_small makes it for the local path."""
    return l if tuple(size) == tuple(l.shape[-2:]) else F.interpolate(
        l, size=tuple(size), mode="bilinear", antialias=size[0] * size[1] < l.shape[-2] * l.shape[-1], align_corners=False)


def with_hints(l: torch.Tensor, ab_small: torch.Tensor, hints: Hints, l_small: torch.Tensor | None = None) -> torch.Tensor:
    """The network's a*b* at the processing size (1, 2, ph, pw), corrected by colour hints given in the
    pixels of the full-size L (1, 1, H, W); HintError for hints that do not fit the photo."""
    (h, w), (ph, pw) = l.shape[-2:], ab_small.shape[-2:]
    hints.check(w, h)
    l_small = small_l(l, (ph, pw)) if l_small is None else l_small
    mask, ab_hint = hint_targets(hints, (h, w), (ph, pw))
    ab = propagate(l_small[0, 0].float().cpu().numpy(), ab_small[0].float().cpu().numpy(), mask, ab_hint)
    return torch.from_numpy(ab)[None].to(ab_small)


def finish(l: torch.Tensor, ab_small: torch.Tensor, *, bits: int = 8) -> np.ndarray:
    """Full-size L (1, 1, H, W) and the predicted ab at the local path's size (1, 2, ph, pw) -> (H, W, 3) sRGB,
    uint8 (or uint16 with bits=16: the gamut fit to 16-bit precision, so clamping cannot move L by more
    than rounding). The ab are upsampled bilinearly (as F.interpolate, align_corners=False) and the
    colours made, band of rows by band of rows: memory beyond the output is a band's, whatever the size."""
    h, w = l.shape[-2:]
    out = np.empty((h, w, 3), dtype=np.uint16 if bits == 16 else np.uint8)
    rows = max(1, BAND_PIXELS // w)
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        ab, lb = upsample_rows(ab_small, (h, w), r0, r1), l[:, :, r0:r1]
        if bits == 16:
            rgb = linear_rgb_to_rgb(lab_to_linear_keep_l(lb.double(), ab.double(), 16, 1e-6))[0].clamp(0.0, 1.0)
            out[r0:r1] = (rgb.movedim(0, -1) * 65535.0 + 0.5).cpu().numpy().astype(np.uint16)
        else:
            out[r0:r1] = lab_to_uint8_keep_l(lb, ab)[0].cpu().numpy()
    return out


def upsample_rows(small: torch.Tensor, size: tuple[int, int], r0: int, r1: int) -> torch.Tensor:
    """Rows r0:r1 of F.interpolate(small, size, mode="bilinear", align_corners=False), computed alone
    (separably: the rows' two source rows blended, then widened)."""
    (h, w), ph = size, small.shape[-2]
    src = ((torch.arange(r0, r1, dtype=torch.float32) + 0.5) * (ph / h) - 0.5).clamp(min=0.0)   # as PyTorch's
    y0 = src.floor().long().clamp(max=ph - 1)
    y1 = (y0 + 1).clamp(max=ph - 1)
    wy = (src - y0).to(small.dtype).to(small.device)[None, None, :, None]
    y0, y1 = y0.to(small.device), y1.to(small.device)
    rows = small.index_select(2, y0) * (1 - wy) + small.index_select(2, y1) * wy          # (B, C, r1 - r0, pw)
    if rows.shape[-1] == w:
        return rows
    return F.interpolate(rows, size=(r1 - r0, w), mode="bilinear", align_corners=False)
