"""Automatic photo colorization: Iizuka, Simo-Serra & Ishikawa, "Let there be Color!" (SIGGRAPH 2016).

The library in two calls:

    from chromalift import colorize_files, load_colorizer
    colorize_files(["old_photos/"], "coloured/")            # what `colorize old_photos/ -o coloured/` does
    colorizer = load_colorizer()                           # or one photo in memory: colorizer.colorize(rgb)

The names below load on first use, so that `colorize --help` and `--version` answer without torch."""
from importlib import import_module

_EXPORTS = {"load_colorizer": "inference.load", "LoadError": "inference.load", "colorize_files": "batch.run",
            "Options": "batch.run", "Tally": "batch.run", "PlanError": "batch.plan", "Hints": "inference.hints",
            "Colorizer": "inference.colorizer", "NumpyColorizer": "inference.numpy_engine",
            "ColorizationNet": "model.network", "ModelConfig": "model.config", "load_weights": "model.weights",
            "save_weights": "model.weights", "ImageError": "io.photos", "read_photo": "io.photos",
            "write_photo": "io.photos"}
__all__ = [
    "ColorizationNet",
    "Colorizer",
    "Hints",
    "ImageError",
    "LoadError",
    "ModelConfig",
    "NumpyColorizer",
    "Options",
    "PlanError",
    "Tally",
    "colorize_files",
    "load_colorizer",
    "load_weights",
    "read_photo",
    "save_weights",
    "write_photo",
]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
