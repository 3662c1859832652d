"""Training batches made on the device: the decoded photos resident in (GPU) memory, crops, flips and the
Lab conversion as tensor ops, so a fast GPU never waits for CPU data loading.

The same contract as `TrainBatches`: item b of an epoch is (L normalised, ab at half size, labels), and
every random choice is a function of (seed, epoch, position in the epoch), so runs resume exactly. The
choices differ from TrainBatches' (drawn per epoch here, per photo there); each path is deterministic.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator

import torch

from chromalift.color.lab import uint8_to_float
from chromalift.train.data.augment import draw_boxes, sample_boxes
from chromalift.train.data.batches import l_and_ab
from chromalift.train.data.cache import Cache, DataError


class DeviceBatches:
    def __init__(self, cache: Cache, device: torch.device, *, crop: int, flip: bool, seed: int, zoom: float = 1.0):
        if crop > cache.size:
            raise DataError(f"crop {crop} is larger than the photos ({cache.size} px)")
        with warnings.catch_warnings():      # a read-only memory map: batches only ever read from it
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            self.images = torch.from_numpy(cache.images[:]).to(device)      # (N, S, S, 3) uint8
            self.labels = torch.from_numpy(cache.labels[:]).to(device)
        self.device, self.crop, self.flip, self.seed, self.zoom = device, crop, flip, seed, zoom

    @property
    def nbytes(self) -> int:
        return self.images.numel()

    def epoch(self, order: list[int], batch_size: int, epoch: int, first: int = 0
              ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """The batches of one epoch from batch `first` on (a partial last batch is dropped)."""
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) * 10_000_019)
        n, s, c = len(order), self.images.shape[1], self.crop
        offsets = torch.randint(0, s - c + 1, (n, 2), generator=g).to(self.device)
        flips = (torch.rand(n, generator=g) < 0.5).to(self.device) & self.flip
        boxes = draw_boxes(n, photo=s, crop=c, zoom=self.zoom, generator=g) if self.zoom > 1 else None
        order_t = torch.as_tensor(order, device=self.device)
        steps = torch.arange(c, device=self.device)
        for b in range(first, n // batch_size):
            sl = slice(b * batch_size, (b + 1) * batch_size)
            idx, off, flip = order_t[sl], offsets[sl], flips[sl]
            if boxes is not None:                                              # zoom: boxes enlarged to the crop
                rgb = sample_boxes(uint8_to_float(self.images[idx]), boxes[sl], flip, c)
            else:
                ys = off[:, :1] + steps                                        # (B, c)
                xs = torch.where(flip[:, None], off[:, 1:] + c - 1 - steps, off[:, 1:] + steps)
                rgb = uint8_to_float(self.images[idx[:, None, None], ys[:, :, None], xs[:, None, :]])
            yield (*l_and_ab(rgb), self.labels[idx])
