"""Automatic photo colorization: Iizuka, Simo-Serra & Ishikawa, "Let there be Color!" (SIGGRAPH 2016).

The names below load on first use, so that `colorize --help` and `--version` answer without torch."""
from importlib import import_module

_EXPORTS = {"Colorizer": "inference.colorizer", "ColorizationNet": "model.network", "ModelConfig": "model.config",
            "ImageError": "io.photos", "LiteColorizer": "inference.numpy_engine", "load_weights": "model.weights",
            "read_photo": "io.photos", "save_weights": "model.weights", "write_photo": "io.photos"}
__all__ = ["ColorizationNet", "Colorizer", "ImageError", "LiteColorizer", "ModelConfig", "load_weights", "read_photo",
           "save_weights", "write_photo"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
