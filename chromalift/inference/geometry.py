"""The sizes each path of the network sees, shared by the PyTorch and the NumPy engines; torch-free, so that
the command line shows these defaults at once. Where the numbers come from: docs/speed.md, "Defaults"."""

# The local path sees photos at most this large (longer side); colour is added back at full size. Larger
# than the training scale costs PSNR and turns colour patchier; 256 keeps chroma detail at nearly the best score.
DEFAULT_PROCESS_SIZE = 256

# Up to this process size the NumPy engine (no torch import) finishes first; beyond it, importing torch pays off.
NUMPY_MAX_PROCESS_SIZE = 1024

MIN_PROCESS_SIDE = 32  # tiny photos are upsampled to at least this on their shorter side
BAND_PIXELS = 1 << 19   # full-size work in bands of about this many pixels: temporaries stay in cache, memory bounded


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
