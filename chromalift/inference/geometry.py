"""Defaults the command line shows before anything heavy is imported (torch takes a second or two), and the
sizes each path of the network sees, shared by the PyTorch and the NumPy paths."""
from pathlib import Path

DEFAULT_WEIGHTS = Path(__file__).parents[1] / "weights" / "default.safetensors"   # the shipped model
WEIGHTS_FORMAT = "colorizer/iizuka2016/v1"   # a weights file's format name (checkpoint.py writes it, both paths check it)
GLOBAL_FLIPS = ("off", "scenes", "all")   # ModelConfig.global_flip: which outputs of the global path see the mirror image too

# The local path sees photos at most this large (longer side); colour is added back at full size.
# Measured by benchmarks/process_size.py on enlarged MiniPlaces validation photos (never the test sets):
# PSNR falls as the local path sees a photo larger than the scale the model was trained at (128 px),
# by 0.17 dB at 256 and 0.7-1.3 dB at the photo's own 512-1024 px, where colour also turns patchier.
# 256 keeps twice the chroma detail of 128 for real, detailed photos at nearly the best score.
DEFAULT_PROCESS_SIZE = 256

CUT_THRESHOLD = 12.0   # films: a cut needs a mean |change in L| (0-100) between frames of at least this ...
CUT_RATIO = 3.0        # ... and this many times the median change of the frames around it
STEADY = 0.8           # SteadyColour strength by default (benchmarks/flicker.py: 0.9 gains little more)

# `colorize PHOTO` runs the NumPy network (lite.py, no torch import: 0.5 s cold instead of 2 s) up to this
# process size: benchmarks/speed.py measured it 2.1x slower than PyTorch's at 224 px, 3.8x at 1024x768 (2026-11-27), so
# beyond this the 1.5 s that importing torch costs is won back
NUMPY_MAX_PROCESS_SIZE = 1024

MIN_PROCESS_SIDE = 32  # tiny photos are upsampled to at least this on their shorter side
BAND_PIXELS = 1 << 19   # full-size work in bands of about this many pixels: measured 2.5x faster than whole
                        # 6 MP photos (the temporaries stay in cache, no page faults), and memory bounded


def process_shape(h: int, w: int, process_size: int | None) -> tuple[int, int]:
    """The size the local path sees: the longer side capped at process_size, the shorter raised to
    MIN_PROCESS_SIDE, one scale for both; its area never exceeds max(process_size^2 (or the photo's own
    area when process_size is None), MIN_PROCESS_SIDE^2), so a 1 x 100000 strip costs no more than a photo
    (it is then stretched across, not scaled up whole)."""
    scale = min(1.0, process_size / max(h, w)) if process_size else 1.0
    if min(h, w) * scale < MIN_PROCESS_SIDE:
        scale = MIN_PROCESS_SIDE / min(h, w)
    ph, pw = max(1, round(h * scale)), max(1, round(w * scale))
    budget = max((process_size ** 2) if process_size else h * w, MIN_PROCESS_SIDE ** 2)
    if ph * pw > budget:
        short, long = MIN_PROCESS_SIDE, max(MIN_PROCESS_SIDE, budget // MIN_PROCESS_SIDE)
        ph, pw = (short, min(long, max(w, short))) if h < w else (min(long, max(h, short)), short)
    return ph, pw


def coarse_shape(ph: int, pw: int, size: int) -> tuple[int, int] | None:
    """The size of `coarse_blend`'s second local pass over a photo the local path sees at ph x pw: the longer
    side at `size` (the model's global size, the scale it trained at), or None where the photo is no larger
    or its shorter side would fall under MIN_PROCESS_SIDE (a strip)."""
    if max(ph, pw) <= size:
        return None
    scale = size / max(ph, pw)
    ch, cw = max(1, round(ph * scale)), max(1, round(pw * scale))
    return (ch, cw) if min(ch, cw) >= MIN_PROCESS_SIDE else None
