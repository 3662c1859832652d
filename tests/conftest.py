"""Shared fixtures: a tiny model saved as safetensors, a colour photo, and the `browser` marker. Shared helpers
that are not fixtures live in helpers.py."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import gradient_rgb
from PIL import Image

from chromalift.model.network import ColorizationNet, ModelConfig
from chromalift.model.weights import save_weights

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


@pytest.fixture
def colour_jpeg(tmp_path) -> Path:
    p = tmp_path / "colour.jpg"
    Image.fromarray(gradient_rgb(48, 64)).save(p, quality=95)
    return p


BROWSER_FIXTURES = {"browser", "page", "served"}   # the tests that drive Chromium


def pytest_collection_modifyitems(items):
    """Mark the tests that need Chromium `browser`, so that `pytest -m "not browser"` runs without it."""
    for item in items:
        if BROWSER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.browser)
