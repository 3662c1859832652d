"""Keep a CPU training process's freed memory for its next step (glibc's malloc).

glibc serves each allocation above its mmap threshold (a few MiB, 32 MiB at most) with fresh pages from the
kernel and gives them back on free, so every training step page-faults its large activations, gradients and
loss buffers anew: one step of the bin recipe spent 7x longer in a 50 MB multiply's page faults than in
its arithmetic, and more with two threads than with one (docs/speed.md, "Training speed"). A step's
allocations repeat, so glibc reuses the freed blocks from the third step on, and the peak stays a step's
(1.36 against 1.32 GB for the bin trainer)."""
from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4   # glibc's malloc.h
_KEEP = 2 ** 31 - 1                         # mallopt takes an int: return memory to the kernel only past 2 GiB free


def keep_freed_memory() -> bool:
    """Serve large allocations from malloc's heap and keep what is freed there for the next step. Returns
    whether it took effect (Linux with glibc; elsewhere the allocator is left as it is)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt   # the process's own C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _KEEP))
