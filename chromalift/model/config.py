"""ModelConfig: the network's shape and its inference settings, with every check, defined without torch so
that the NumPy path (inference/numpy_engine.py) reads a weights file's config through the same checks as the torch path."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

DEFAULT_WEIGHTS = Path(__file__).parents[1] / "weights" / "default.safetensors"   # the shipped model
WEIGHTS_FORMAT = "colorizer/iizuka2016/v1"   # a weights file's format name: model/weights.py writes it, both engines check it
GLOBAL_FLIPS = ("off", "scenes", "all")   # ModelConfig.global_flip: which outputs of the global path see the mirror image too

# what only inference reads: weights keep them, a training run started from the weights does not
INFERENCE_SETTINGS = ("ab_temperature", "ab_gain", "global_flip", "coarse_blend")


@dataclass(frozen=True)
class ModelConfig:
    num_classes: int = 205   # scene classes of the classification head (Places: 205); 0 = no head
    width: float = 1.0       # multiplier on every channel count and FC width (paper: 1.0)
    global_size: int = 224   # side of the square copy the global path sees; a multiple of 32
    ab_bins: int = 0         # 0: regress ab (paper); n > 0: classify over an n x n grid of ab bins (Zhang et al.)
    ab_temperature: float = 0.38   # annealed-mean temperature of the bin distribution (Zhang et al.: 0.38)
    ab_keep: tuple[int, ...] = ()  # with ab_bins: the grid's bins the head predicts (row-major); (): all of them
    global_features: bool = True   # False: the paper's ablation without the global prior
    ab_gain: float = 1.0     # inference: predicted ab scaled by this (a calibration against MSE's pull to grey)
    global_flip: str = "off"   # inference: "scenes" / "all": the scene scores / and the prior, from the photo and its mirror
    coarse_blend: float = 0.0  # inference: share of a second local pass at the global size, for larger photos
    head_scale: int = 2      # the colour head predicts at 1/head_scale of the photo: 2 (paper), or 4 (Zhang et al.)

    def __post_init__(self):
        if self.global_size % 32 or self.global_size < 32:
            raise ValueError(f"global_size must be a positive multiple of 32, got {self.global_size}")
        if not 0 < self.width <= 4:
            raise ValueError(f"width must be in (0, 4], got {self.width}")
        if self.num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {self.num_classes}")
        if not 0 <= self.ab_bins <= 64 or self.ab_bins == 1:
            raise ValueError(f"ab_bins must be 0 or in [2, 64], got {self.ab_bins}")
        if not 0 < self.ab_gain <= 4:
            raise ValueError(f"ab_gain must be in (0, 4], got {self.ab_gain}")
        if self.global_flip not in GLOBAL_FLIPS:
            raise ValueError(f"global_flip must be one of {', '.join(GLOBAL_FLIPS)}, got {self.global_flip!r}")
        if not 0 <= self.coarse_blend < 1:
            raise ValueError(f"coarse_blend must be in [0, 1), got {self.coarse_blend}")
        if self.head_scale not in (2, 4):
            raise ValueError(f"head_scale must be 2 or 4, got {self.head_scale}")
        if not 0 < self.ab_temperature <= 10:
            raise ValueError(f"ab_temperature must be in (0, 10], got {self.ab_temperature}")
        object.__setattr__(self, "ab_keep", tuple(self.ab_keep))   # JSON gives a list
        keep = self.ab_keep
        if keep and (not self.ab_bins or len(keep) < 2 or list(keep) != sorted(set(keep))
                     or keep[0] < 0 or keep[-1] >= self.ab_bins ** 2):
            raise ValueError(f"ab_keep must be at least 2 increasing bin indices of the {self.ab_bins}^2 grid")

    @property
    def ab_outputs(self) -> int:
        """Channels of the colorization network's last layer: 2 (ab), or one per predicted ab bin."""
        return len(self.ab_keep) or self.ab_bins ** 2 or 2

    def ch(self, n: int) -> int:
        """Channel count n of the paper's table, scaled by the width multiplier."""
        return max(1, round(n * self.width))

    def to_dict(self) -> dict:
        return asdict(self)


def parse(value) -> ModelConfig:
    """A ModelConfig from untrusted JSON-decoded data: known keys, right types, sane sizes, or ValueError
    saying what is wrong."""
    known = {f.name: f.type for f in fields(ModelConfig)}
    if not isinstance(value, dict) or set(value) - set(known):
        extra = sorted(set(value) - set(known)) if isinstance(value, dict) else []
        raise ValueError("model config is not one this version reads"
                         + (f" (unknown keys: {', '.join(map(str, extra))})" if extra else ""))
    for key, v in value.items():
        kind = str(known[key])
        ok = (isinstance(v, (list, tuple)) and len(v) <= 4096 and all(type(i) is int for i in v) if kind.startswith("tuple") else
              type(v) is bool if kind == "bool" else
              type(v) is str and len(v) <= 64 if kind == "str" else
              isinstance(v, (int, float)) and not isinstance(v, bool) if kind == "float" else type(v) is int)
        if not ok:
            raise ValueError(f"model config {key}={v!r} has the wrong type")
    if not 0 <= value.get("num_classes", 0) <= 100_000 or value.get("global_size", 224) > 4096:
        raise ValueError(f"model config sizes are out of range ({value})")
    return ModelConfig(**value)
