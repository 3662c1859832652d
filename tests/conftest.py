"""Shared fixtures: a tiny model saved as safetensors, and photos of every kind made on the fly."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from chromalift.checkpoint import save_weights
from chromalift.model import ColorizationNet, ModelConfig

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
KODAK = SHARED / "kodak24"
MINIPLACES = SHARED / "miniplaces"

TINY = ModelConfig(num_classes=3, width=0.125, global_size=32)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = ColorizationNet(TINY)
    # an untrained net's activations vanish layer by layer in eval mode; calibrate batch-norm statistics
    # on random inputs so that every layer, the global prior included, carries signal
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None
    with torch.no_grad():
        for _ in range(4):
            model(torch.rand(8, 1, TINY.global_size, TINY.global_size) - 0.5)
    model.eval()
    # non-trivial colour from an untrained net: offset the output, and let the global prior (the second
    # half of the fusion layer's inputs) weigh as much as a trained one's does, for style-transfer tests
    with torch.no_grad():
        model.colorization.layers[-2].bias.copy_(torch.tensor([0.4, 0.6]))
        fusion = model.fusion.linear[0].weight
        fusion[:, fusion.shape[1] // 2:] *= 20
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_weights(path, model, classes=["a", "b", "c"])
    return path


def gradient_rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth colour test image with some texture, (h, w, 3) uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x / max(w - 1, 1), y / max(h - 1, 1), 0.5 + 0.5 * np.sin(x / 7.0 + y / 5.0)], axis=-1)
    img = img * 200 + rng.integers(0, 40, size=(h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def colour_jpeg(tmp_path) -> Path:
    p = tmp_path / "colour.jpg"
    Image.fromarray(gradient_rgb(48, 64)).save(p, quality=95)
    return p


def has_miniplaces() -> bool:
    return (MINIPLACES / "train").is_dir()
