"""Automatic photo colorization: Iizuka, Simo-Serra & Ishikawa, "Let there be Color!" (SIGGRAPH 2016)."""
from .checkpoint import load_weights, save_weights
from .images import ImageError, read_photo, write_photo
from .inference import Colorizer
from .model import ColorizationNet, ModelConfig

__all__ = ["Colorizer", "ColorizationNet", "ModelConfig", "ImageError", "load_weights", "read_photo",
           "save_weights", "write_photo"]
