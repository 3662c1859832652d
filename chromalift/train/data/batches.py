"""Batches from a cache: which photos each epoch draws (sampling weights, an epoch's sampler), and
TrainBatches, which gathers, crops, flips and converts them to (L, ab, label). Its randomness depends only on
(seed, epoch, photo), so an interrupted run resumes exactly and N processes see what one would."""
from __future__ import annotations

import fnmatch

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from chromalift.color.lab import normalize_l, rgb_to_lab, uint8_to_float
from chromalift.train.data.augment import draw_boxes, sample_boxes
from chromalift.train.data.cache import Cache, DataError


def sampling_weights(cache: Cache, color_sampling: float = 0.0, class_weights: str = "") -> np.ndarray | None:
    """How often each photo is drawn, relative to the others (None: uniformly): colourfulness^p, times W for
    photos of the classes matching each "PATTERN=W" of `class_weights` (the first pattern that matches)."""
    weights = cache.colorfulness.astype(np.float64) ** color_sampling if color_sampling else None
    rules = [item.rsplit("=", 1) for item in class_weights.split(",") if item.strip()]
    if not rules:
        return weights
    per_class = np.ones(len(cache.classes) + 1)       # the last entry: unlabelled photos (label -1)
    for rule in rules:
        try:
            pattern, weight = rule[0].strip(), float(rule[1])
        except (IndexError, ValueError):
            raise ValueError(f"--class-weights {class_weights!r}: write PATTERN=W, e.g. 'fl_*=2'") from None
        if not weight > 0 or not np.isfinite(weight):
            raise ValueError(f"--class-weights {pattern}={rule[1]}: a weight must be a positive number")
        matched = [i for i, name in enumerate(cache.classes) if fnmatch.fnmatchcase(name, pattern)]
        if not matched:
            raise ValueError(f"--class-weights {pattern}: matches none of the {len(cache.classes)} classes")
        for i in matched:
            per_class[i] = weight if per_class[i] == 1 else per_class[i]
    by_photo = per_class[np.asarray(cache.labels)]
    return by_photo if weights is None else weights * by_photo


class EpochSampler(DistributedSampler):
    """torch's DistributedSampler (shuffled per epoch, sharded rank::world), optionally drawing photos
    with probability proportional to `weights` (colour-aware sampling) instead of a permutation."""

    def __init__(self, n: int, *, seed: int, rank: int = 0, world: int = 1, weights: np.ndarray | None = None):
        super().__init__(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)

    def __iter__(self):
        if self.weights is None:
            return super().__iter__()
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.multinomial(self.weights, self.total_size, replacement=True, generator=g).tolist()
        return iter(order[self.rank:self.total_size:self.num_replicas])


def l_and_ab(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, c, c) RGB in [0, 1] -> the network's input L, normalised, and its target ab at half size."""
    lab = rgb_to_lab(rgb)
    return normalize_l(lab[:, :1]), torch.nn.functional.avg_pool2d(lab[:, 1:], 2)


class TrainBatches(Dataset):
    """Item b = the b-th batch of one epoch as (L, ab, labels): L and ab normalised, ab at half size.

    Crops and flips are drawn from a generator seeded by (seed, epoch, photo index), so they do not
    depend on batch size, worker count or process rank.
    """

    def __init__(self, cache: Cache, order: list[int], batch_size: int, *, crop: int, flip: bool, seed: int,
                 epoch: int, train: bool = True, zoom: float = 1.0):
        if crop > cache.size:
            raise DataError(f"crop {crop} is larger than the cached photos ({cache.size} px); prepare with a larger --size")
        self.cache, self.crop, self.flip, self.seed, self.epoch, self.train = cache, crop, flip, seed, epoch, train
        self.zoom = zoom if train else 1.0
        # training drops a last partial batch (every step has the same batch size); evaluation keeps it
        last = len(order) - batch_size + 1 if train else len(order)
        self.batches = [order[i:i + batch_size] for i in range(0, max(last, 0), batch_size)]

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, b: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = self.batches[b]
        rgb = self._zoomed(idx) if self.zoom > 1 else uint8_to_float(self._crops(idx))
        return (*l_and_ab(rgb), torch.from_numpy(self.cache.labels[idx]))

    def _generator(self, i: int) -> torch.Generator:
        return torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 10_000_019 + i)

    def _zoomed(self, idx: list[int]) -> torch.Tensor:
        """Each photo's random box (augment.draw_boxes) enlarged to the crop, as (B, 3, c, c) floats."""
        boxes, flips = [], []
        for i in idx:
            g = self._generator(i)
            boxes.append(draw_boxes(1, photo=self.cache.size, crop=self.crop, zoom=self.zoom, generator=g))
            flips.append(self.flip and bool(torch.randint(0, 2, (1,), generator=g)))
        photos = uint8_to_float(torch.from_numpy(np.stack([self.cache.images[i] for i in idx])))
        return sample_boxes(photos, torch.cat(boxes), torch.tensor(flips), self.crop)

    def _crops(self, idx: list[int]) -> torch.Tensor:
        """Each photo's random (or, in evaluation, centre) crop, flipped at random, as (B, c, c, 3) uint8."""
        s, c = self.cache.size, self.crop
        crops = []
        for i in idx:
            if self.train:
                g = self._generator(i)
                y, x = torch.randint(0, s - c + 1, (2,), generator=g).tolist()
                flip = self.flip and bool(torch.randint(0, 2, (1,), generator=g))
            else:  # evaluation: the centre crop, unflipped
                y = x = (s - c) // 2
                flip = False
            img = self.cache.images[i, y:y + c, x:x + c]
            crops.append(img[:, ::-1] if flip else img)
        return torch.from_numpy(np.ascontiguousarray(np.stack(crops)))


def eval_batches(cache: Cache, batch_size: int, crop: int) -> TrainBatches:
    """The whole cache in order as centre crops, unflipped, the last batch kept."""
    return TrainBatches(cache, list(range(len(cache))), batch_size, crop=crop, flip=False, seed=0, epoch=0,
                        train=False)
