"""Choosing the device in one place: cuda, then mps, then cpu."""
from __future__ import annotations

from pathlib import Path

import torch


def pick_device(name: str = "auto", *, local_rank: int = 0) -> torch.device:
    """'auto' -> the best available; otherwise the named device, with a clear error if it is absent."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available on this machine")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
    return device


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 runs many times slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


# Dense bf16 tensor-core peaks (FLOP/s, no sparsity) from the vendors' data sheets, by device name.
BF16_PEAKS = (("H200", 989e12), ("H100 PCIe", 756e12), ("H100", 989e12), ("GH200", 989e12), ("B200", 2250e12),
              ("A100", 312e12), ("L40S", 362e12), ("A10G", 70e12), ("L4", 121e12))


def bf16_peak_flops(device: torch.device) -> float | None:
    """The device's dense bf16 peak in FLOP/s, where its name is in BF16_PEAKS; None elsewhere (CPUs)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in BF16_PEAKS if key in name), None)

