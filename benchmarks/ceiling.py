"""What this CPU can do at most: the ceiling the speed table is measured against.

Two ceilings, both reported:
  peak  - cores x clock x FLOP per cycle per core, from the vector width and the number of FMA pipes of
          the microarchitecture (by vendor and CPU family: flags give the width but not the pipes), and
          the all-core clock measured with a chain of dependent adds (clock_ghz);
  GEMM  - the best fp32 GEMM (torch.mm) over several shapes, including the convolutions' own shapes.
A network that does better than `peak` did fewer multiplies than counted (Winograd or FFT convolutions):
so the convolution algorithm and implementation oneDNN chose are reported too (from ONEDNN_VERBOSE).
"""
from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

# fp32 FLOP per cycle per core = 2 (an FMA) x lanes x FMA pipes. Pipes per microarchitecture: AMD Zen 2-4
# have two 256-bit FMA pipes (Zen 4 runs AVX-512 on them in two halves); Zen 5 and Intel's server cores
# from Skylake-SP on have two 512-bit pipes; Intel client cores with AVX2 have two 256-bit pipes.
GEMM_SHAPES = [(2048, 2048, 2048), (4096, 1024, 1024), (1024, 4096, 4096), (512, 512, 512),
               (16384, 576, 64), (4096, 1152, 128), (1024, 2304, 256)]   # the last three: 3x3 conv layers as GEMMs


def cpu_flags() -> tuple[str, set[str], dict[str, str]]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown", set(), {}
    first = text.split("\n\n")[0]
    fields = dict(line.split(":", 1) for line in first.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    return fields.get("model name", "unknown"), set(fields.get("flags", "").split()), fields


def flop_per_cycle(flags: set[str], fields: dict[str, str]) -> tuple[int, str]:
    """fp32 FLOP per cycle per core, and how it was decided."""
    vendor, family = fields.get("vendor_id", ""), int(fields.get("cpu family", "0") or 0)
    if "avx512f" in flags:
        if vendor == "AuthenticAMD" and family < 26:
            return 32, "AVX-512 on two 256-bit FMA pipes (AMD Zen 4): 16 FMA lanes per cycle"
        return 64, "AVX-512, two 512-bit FMA pipes (Zen 5 / Intel server): 32 FMA lanes per cycle"
    if "avx2" in flags and "fma" in flags:
        return 32, "AVX2 + FMA, two 256-bit FMA pipes: 16 FMA lanes per cycle"
    if "avx" in flags:
        return 16, "AVX without FMA: 8 lanes, separate add and multiply"
    return 8, "SSE: 4 lanes, separate add and multiply"


def bf16_flop_per_cycle(flags: set[str], fields: dict[str, str]) -> tuple[int, str] | None:
    """bf16 FLOP per cycle per core where the CPU has bf16 units; None where bf16 runs on fp32 units."""
    if "amx_bf16" in flags:
        return 1024, "AMX tiles: 512 bf16 FMA per cycle"
    if "avx512_bf16" in flags:
        fp32, basis = flop_per_cycle(flags, fields)
        return 2 * fp32, f"AVX512-BF16: two bf16 products per fp32 lane of {basis}"
    return None


def peak_gflops(cores: int, *, bf16: bool) -> tuple[float, str]:
    """The nominal peak of `cores` cores in the precision a step runs in, and what it assumes."""
    _, flags, fields = cpu_flags()
    per_cycle, basis = (bf16 and bf16_flop_per_cycle(flags, fields)) or flop_per_cycle(flags, fields)
    ghz, source = clock_ghz(cores)
    return cores * per_cycle * ghz, f"{cores} cores x {per_cycle} FLOP/cycle ({basis}) x {ghz:.2f} GHz ({source})"


CLOCK_C = r"""
#include <stdio.h>
#include <time.h>
int main(void) {   /* ten dependent 1-cycle register adds per iteration: adds per second = the clock */
    long n = 200000000, x = 0, one = 1;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    /* register + register, not + immediate: recent Intel cores fold chains of immediate adds
       (19.9 G adds/s measured on one core of a Xeon with AMX), a register operand they cannot fold */
    __asm__ volatile("1:\n\t"
        "add %2, %0\n\tadd %2, %0\n\tadd %2, %0\n\tadd %2, %0\n\tadd %2, %0\n\t"
        "add %2, %0\n\tadd %2, %0\n\tadd %2, %0\n\tadd %2, %0\n\tadd %2, %0\n\t"
        "dec %1\n\tjnz 1b\n\t" : "+r"(x), "+r"(n) : "r"(one));
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.4f\n", x / ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9) / 1e9);
    return 0;
}
"""


def clock_ghz(threads: int) -> tuple[float, str]:
    """The all-core clock, measured: a chain of dependent integer adds (one per cycle) on every core at
    once, compiled here with the C compiler (x86-64). Without one: the clock the kernel reports, which in
    a VM is often the nominal one, not the boost clock the cores really run at."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc and platform.machine() in ("x86_64", "AMD64"):
        with tempfile.TemporaryDirectory() as tmp:
            src, exe = Path(tmp) / "clock.c", Path(tmp) / "clock"
            src.write_text(CLOCK_C)
            if subprocess.run([cc, "-O1", "-o", str(exe), str(src)], capture_output=True).returncode == 0:
                procs = [subprocess.Popen([str(exe)], stdout=subprocess.PIPE, text=True) for _ in range(threads)]
                ghz = min(float(p.communicate()[0]) for p in procs)
                if 0.5 < ghz < 6.5:   # outside: the chain was not one add per cycle, so it is no clock
                    return ghz, f"measured on {threads} cores at once (dependent adds)"
    mhz = [float(m) for m in re.findall(r"cpu MHz\s*:\s*([\d.]+)", Path("/proc/cpuinfo").read_text())] \
        if Path("/proc/cpuinfo").exists() else []
    return (max(mhz) / 1000, "reported by the kernel (may be nominal, not boost)") if mhz else (float("nan"), "unknown")


def best_gemm_gflops(repeats: int = 5) -> tuple[float, str]:
    best, shape = 0.0, ""
    for m, k, n in GEMM_SHAPES:
        a, b = torch.randn(m, k), torch.randn(k, n)
        torch.mm(a, b)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            torch.mm(a, b)
            times.append(time.perf_counter() - t)
        g = 2 * m * k * n / min(times) / 1e9
        if g > best:
            best, shape = g, f"{m}x{k}x{n}"
    return best, shape


def convolution_algorithms(weights: str | None) -> list[str]:
    """The distinct oneDNN convolution implementations and algorithms of one colorize() call."""
    code = ("import numpy as np\nfrom chromalift.inference.colorizer import Colorizer\n"
            f"c = Colorizer.load({weights!r}, device='cpu')\n"
            "c.colorize(np.random.default_rng(0).random((512, 512, 3), dtype=np.float32), process_size=512)\n")
    env = dict(os.environ, ONEDNN_VERBOSE="1", DNNL_VERBOSE="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout
    found = set()
    for line in out.splitlines():
        if ",convolution," in line and ",exec," in line:
            parts = line.split(",")
            impl = parts[parts.index("convolution") + 1] if "convolution" in parts[:-1] else "?"
            alg = next((p for p in parts if p.startswith("alg:")), "alg:?")
            found.add(f"{impl} {alg.removeprefix('alg:')}")
    return sorted(found) or ["(no oneDNN convolution reported: another backend ran)"]


def ceiling(weights: str | None = None) -> dict:
    name, flags, fields = cpu_flags()
    per_cycle, basis = flop_per_cycle(flags, fields)
    threads = torch.get_num_threads()
    ghz, clock_source = clock_ghz(threads)
    gemm, shape = best_gemm_gflops()
    return {"cpu": name, "threads": threads, "flop_per_cycle_per_core": per_cycle, "basis": basis,
            "clock_ghz": ghz, "clock_source": clock_source, "peak_gflops": threads * ghz * per_cycle,
            "best_gemm_gflops": gemm, "best_gemm_shape": shape,
            "fast_bf16": sorted(flags & {"avx512_bf16", "amx_bf16"}),
            "convolutions": convolution_algorithms(weights)}
