"""load_colorizer: the one place that picks an engine for a model and a device."""
from __future__ import annotations

import os

from chromalift.inference.geometry import DEFAULT_PROCESS_SIZE, NUMPY_MAX_PROCESS_SIZE

BACKENDS = ("auto", "numpy", "onnx", "torch")


class LoadError(ValueError):
    """The model cannot be loaded or combined as asked; str() is one line naming the file or option."""


def load_colorizer(weights: str | os.PathLike | None = None, *, device: str = "auto", backend: str = "auto",
                   one_photo: bool = False, process_size: int | None = DEFAULT_PROCESS_SIZE, films: bool = False,
                   hints: bool = False):
    """A Colorizer for `weights` (default: the shipped model).

    backend 'auto' picks the NumPy engine (no torch import: the fastest start) for one photo on the CPU with
    the shipped model at a process size up to NUMPY_MAX_PROCESS_SIZE, and fused PyTorch otherwise; 'numpy',
    'torch' and 'onnx' ask for one. `films` and `hints` say what the run needs (the NumPy engine has neither).
    LoadError with one line for what cannot be loaded or combined."""
    if backend not in BACKENDS:
        raise LoadError(f"backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    small = process_size is not None and 0 < process_size <= NUMPY_MAX_PROCESS_SIZE
    quick = one_photo and small and weights is None and not hints and not films and device in ("auto", "cpu")
    if backend == "numpy" or (backend == "auto" and quick):
        if device not in ("auto", "cpu"):
            raise LoadError(f"--backend numpy runs on the CPU, not --device {device}")
        if films:
            raise LoadError("--backend numpy colorizes photos; films need the PyTorch backend")
        if hints:
            raise LoadError("colour hints run on the PyTorch backend: leave out --backend numpy")
        from chromalift.inference.numpy_engine import NumpyColorizer
        return NumpyColorizer.load(weights)
    from chromalift.inference.colorizer import Colorizer
    from chromalift.model.weights import CheckpointError
    try:
        return Colorizer.load(weights, device=device, backend=backend)
    except CheckpointError as e:
        raise LoadError(str(e)) from None
