"""Zoom augmentation: a random box of each photo, enlarged to the training crop.

With `--zoom Z`, a training crop is a box covering between 1/Z^2 and all of the crop's area, with its
aspect ratio between 3/4 and 4/3 (log-uniform), anywhere in the photo, resized bilinearly to the crop
size and flipped at random. The network then sees objects up to Z times larger than the cached photos
show them, as it does when a high-resolution close-up is coloured, and the scene classifier sees fewer
exact repeats of its 38k photos. Boxes only ever enlarge (Z >= 1), so resizing needs no antialiasing.

The same two functions serve the data-loading processes (one photo at a time, each with its own seeded
generator) and the device-resident batches (one epoch at a time), so both paths draw boxes alike.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

ASPECT = (3 / 4, 4 / 3)


def draw_boxes(n: int, *, photo: int, crop: int, zoom: float, generator: torch.Generator) -> torch.Tensor:
    """(n, 4) boxes as (centre y, centre x, height, width) in the photo's [-1, 1] coordinates."""
    if zoom < 1:
        raise ValueError(f"zoom {zoom} is below 1: boxes only enlarge")
    u = torch.rand(n, 4, generator=generator, dtype=torch.float64)
    area = (crop / photo) ** 2 * (1 / zoom ** 2 + (1 - 1 / zoom ** 2) * u[:, 0])
    aspect = torch.exp(math.log(ASPECT[0]) + (math.log(ASPECT[1]) - math.log(ASPECT[0])) * u[:, 1])
    h = (area / aspect).sqrt().clamp(max=1.0)                                # fractions of the photo's side
    w = (area * aspect).sqrt().clamp(max=1.0)
    cy = (1 - h) * (2 * u[:, 2] - 1)                                         # the box stays inside the photo
    cx = (1 - w) * (2 * u[:, 3] - 1)
    return torch.stack([cy, cx, h, w], 1).float()


def sample_boxes(images: torch.Tensor, boxes: torch.Tensor, flips: torch.Tensor, crop: int) -> torch.Tensor:
    """(B, 3, S, S) float photos -> (B, 3, crop, crop): each box resized to the crop, mirrored where flipped."""
    b = images.shape[0]
    boxes = boxes.to(images.device, images.dtype)
    theta = images.new_zeros(b, 2, 3)
    sign = 1 - 2 * flips.to(images.device, images.dtype)                   # -1 mirrors x
    theta[:, 0, 0] = boxes[:, 3] * sign
    theta[:, 0, 2] = boxes[:, 1]
    theta[:, 1, 1] = boxes[:, 2]
    theta[:, 1, 2] = boxes[:, 0]
    grid = F.affine_grid(theta, [b, 3, crop, crop], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
