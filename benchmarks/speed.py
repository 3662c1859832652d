"""Inference speed against the machine's own limit, in one run.

    python benchmarks/speed.py [--model W.safetensors | --paper] [--compile] [--repeats N]

1. The ceiling (ceiling.py): the CPU's fp32 peak from its vector width, FMA pipes and measured all-core
   clock, the best fp32 GEMM over several shapes, and the convolution algorithm oneDNN ran.
2. The network (both paths: global at its square size, local at HxW), batch 1 at 224x224, 512x512 and
   1024x768, and batch throughput at 224x224, for each engine:
     naive  - eager PyTorch as a peer would run it: unfused batch norm, NCHW, no_grad
     torch  - our eager engine: batch norm folded into convolutions, channels_last, inference_mode
     onnx   - ONNX Runtime on the exported graphs (`--backend onnx`)
     numpy  - inference/numpy_engine.py: the network in NumPy, what `colorize PHOTO` uses for one photo (no torch import)
     compile- torch.compile of the fused model (with --compile; its cold start reported separately)
   achieved GFLOP/s = 2 x multiply-accumulates (counted from the layer shapes) / time, as a share of the peak.
   Where the CPU has native bf16 (AVX512-BF16, AMX): the network under bf16 autocast too, and how far its
   colours move from fp32's on a Kodak photo, in 8-bit levels (colorize uses bf16 only if within one).
3. Peak resident memory of the whole `colorize` pipeline on a 1024x768 and a 4000x3000 photo.
Timings are medians; compare only ratios from one run (the machine is shared and noisy).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from ceiling import ceiling

from chromalift.inference.colorizer import DEFAULT_WEIGHTS
from chromalift.inference.engines import OnnxEngine, TorchEngine
from chromalift.inference.numpy_engine import NumpyColorizer
from chromalift.model.network import ColorizationNet, ModelConfig, count_macs
from chromalift.model.numpy_network import NumpyNet
from chromalift.model.weights import load_weights

SIZES = [(224, 224), (512, 512), (768, 1024)]
ROOT = Path(__file__).resolve().parents[1]


def median_time(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


class Bf16(TorchEngine):
    """Our engine under bf16 autocast, its outputs back in fp32."""
    name = "bf16"

    def global_prior(self, l, *, scores: bool = True):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            prior, logits = super().global_prior(l, scores=scores)
        return prior.float(), None if logits is None else logits.float()

    def local_ab(self, l, prior):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return super().local_ab(l, prior).float()


def bf16_levels(model) -> dict:
    """How far bf16 moves the colours of a real photo from fp32's: max and 99.9th percentile, 8-bit levels."""
    from chromalift.inference.colorizer import Colorizer
    from chromalift.io.photos import read_photo
    photos = sorted((ROOT.parent / "shared" / "data" / "kodak24").glob("*.png"))[:4]
    rgbs = [read_photo(p).pixels for p in photos] or [np.random.default_rng(0).integers(0, 255, (512, 768, 3), np.uint8)]
    diffs = []
    for rgb in rgbs:
        fp32 = Colorizer(model, torch.device("cpu")).colorize(rgb)
        bf16 = Colorizer(model, torch.device("cpu"), engine=Bf16(model, torch.device("cpu"))).colorize(rgb)
        diffs.append(np.abs(fp32.astype(int) - bf16).ravel())
    d = np.concatenate(diffs)
    return {"max_levels": int(d.max()), "p999_levels": float(np.percentile(d, 99.9)), "photos": len(rgbs)}


class Naive:
    def __init__(self, model):
        self.model = model.eval()

    @torch.no_grad()
    def global_prior(self, l, *, scores: bool = True):
        return self.model.global_prior(l, scores=scores)

    @torch.no_grad()
    def local_ab(self, l, prior):
        return self.model.local_ab(l, prior)


class Compiled(TorchEngine):
    name = "compile"

    def __init__(self, model):
        super().__init__(model, torch.device("cpu"))
        self.model.global_prior = torch.compile(self.model.global_prior, dynamic=True)
        self.model.local_ab = torch.compile(self.model.local_ab, dynamic=True)


class Lite:
    """The NumPy network on the same weights; a batch is one photo after another."""
    name = "numpy"

    def __init__(self, model):
        self.net = NumpyNet.from_state(model.config.to_dict(), {k: v.float().numpy() for k, v in model.state_dict().items()})

    def global_prior(self, l, *, scores: bool = True):
        return [self.net.global_prior(x[0].numpy(), scores=scores)[0] for x in l], None

    def local_ab(self, l, priors):
        return [self.net.local_ab(x[0].numpy(), p) for x, p in zip(l, priors)]


def peak_memory_mib(weights: str | None, h: int, w: int, backend: str) -> float:
    # VmHWM is the process's own peak; ru_maxrss would carry this (forking) benchmark's own over exec
    code = f"""
import re, numpy as np
from chromalift.inference.colorizer import Colorizer
c = Colorizer.load({weights!r}, backend={backend!r})
rgb = np.random.default_rng(0).random(({h}, {w}, 3), dtype=np.float32)
c.colorize(rgb)
print(int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) / 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _engines(model, ceil: dict, compile: bool) -> tuple[dict, dict]:
    """The engines to time, and the cold starts measured while building them."""
    engines = {"naive": Naive(model), "torch": TorchEngine(model, torch.device("cpu"))}
    if ceil["fast_bf16"]:
        engines["bf16"] = Bf16(model, torch.device("cpu"))
    engines["numpy"] = Lite(model)
    t = time.perf_counter()
    engines["onnx"] = OnnxEngine(model)
    cold = {"onnx": time.perf_counter() - t}
    if compile:
        engines["compile"] = Compiled(model)
    return engines, cold


def _network_table(model, engines: dict, ceil: dict, cold: dict, repeats: int) -> dict:
    """Batch 1 at each size, every engine: ms and the share of the peak (bf16: of the bf16 peak)."""
    g, peak, sizes = model.config.global_size, ceil["peak_gflops"], {}
    print("\n| input | GFLOP | " + " | ".join(f"{e} ms | {e} % of peak" for e in engines) + " |   (bf16: of the bf16 peak, "
          "2x fp32's with AVX512-BF16; AMX is not modelled)")
    print("|---|---|" + "---|---|" * len(engines))
    for h, w in SIZES:
        flops = 2 * count_macs(model, h, w)
        l, lg = torch.rand(1, 1, h, w) - 0.5, torch.rand(1, 1, g, g) - 0.5
        row = {}
        for key, engine in engines.items():
            def run():
                prior, _ = engine.global_prior(lg, scores=False)   # as colorize() asks
                engine.local_ab(l, prior)
            if key == "compile":
                t = time.perf_counter()
                run()
                cold["compile"] = cold.get("compile", 0.0) + time.perf_counter() - t
            s = median_time(run, repeats)
            own_peak = peak * (2 if key == "bf16" else 1)   # AVX512-BF16: two bf16 products per fp32 lane
            row[key] = {"ms": s * 1e3, "gflops": flops / s / 1e9, "fraction_of_peak": flops / s / 1e9 / own_peak,
                        "fraction_of_best_gemm": flops / s / 1e9 / ceil["best_gemm_gflops"]}
        sizes[f"{w}x{h}"] = {"gflop": flops / 1e9, **row}
        print(f"| {w}x{h} | {flops / 1e9:.1f} | " + " | ".join(
            f"{row[e]['ms']:.0f} | {row[e]['fraction_of_peak']:.0%}" for e in engines) + " |")
    return sizes


def _batch_throughput(model, engines: dict, b: int, repeats: int) -> dict:
    g = model.config.global_size
    lb, lgb = torch.rand(b, 1, 224, 224) - 0.5, torch.rand(b, 1, g, g) - 0.5
    out = {}
    for key, engine in engines.items():
        def run():
            prior, _ = engine.global_prior(lgb, scores=False)
            engine.local_ab(lb, prior)
        out[key] = b / median_time(run, max(3, repeats // 2))
    print(f"\nbatch {b} at 224x224, images/s: " + ", ".join(f"{k} {v:.1f}" for k, v in out.items()))
    return out


def _end_to_end(model, engines: dict, sizes: dict, weights: str | None, repeats: int) -> dict:
    """The whole colorize() call (Lab at full size, both paths, upsampling, gamut fit) and peak memory."""
    from chromalift.inference.colorizer import Colorizer
    col = Colorizer(model, torch.device("cpu"))
    lite = NumpyColorizer(engines["numpy"].net, name="numpy")
    times = {}
    for h, w in SIZES[1:]:
        rgb = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
        for key, c in (("torch", col), ("numpy", lite)):
            s = median_time(lambda c=c: c.colorize(rgb, process_size=max(h, w)), max(3, repeats // 2))
            net = sizes[f"{w}x{h}"][key]["ms"]
            times.setdefault(f"{w}x{h}", {})[key] = s * 1e3
            print(f"colorize() end to end at {w}x{h}, {key}: {s * 1e3:.0f} ms, of which the network "
                  f"{net / (s * 1e3):.0%}")
    mem = {f"{w}x{h}": peak_memory_mib(weights, h, w, "auto") for h, w in [(768, 1024), (3000, 4000)]}
    print("peak memory of colorize (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in mem.items()))
    return {"end_to_end_ms": times, "peak_memory_mib": mem}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="weights to time (default: the shipped model)")
    p.add_argument("--paper", action="store_true", help="time the paper's full network (random weights) instead")
    p.add_argument("--compile", action="store_true", help="also time torch.compile (slow cold start)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--batch", type=int, default=8, help="batch size of the throughput measurement")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()

    if args.paper:
        model, name = ColorizationNet(ModelConfig(num_classes=205)).eval(), "paper network (width 1, global 224)"
    else:
        model = load_weights(args.model or DEFAULT_WEIGHTS)[0]
        name = f"{args.model or 'shipped model'} ({model.config})"
    ceil = ceiling(args.model)
    peak = ceil["peak_gflops"]
    print(f"machine: {ceil['cpu']}, {ceil['threads']} threads at {ceil['clock_ghz']:.2f} GHz ({ceil['clock_source']}); "
          f"{ceil['basis']}\n  fp32 peak {peak:.0f} GFLOP/s; best GEMM {ceil['best_gemm_gflops']:.0f} GFLOP/s "
          f"({ceil['best_gemm_gflops'] / peak:.0%} of peak, {ceil['best_gemm_shape']}); convolutions: "
          f"{', '.join(ceil['convolutions'])}")
    print(f"model: {name}")

    engines, cold = _engines(model, ceil, args.compile)
    results = {"ceiling": ceil, "model": name, "cold_start_s": cold}
    results["sizes"] = _network_table(model, engines, ceil, cold, args.repeats)
    results["batch_images_per_s"] = _batch_throughput(model, engines, args.batch, args.repeats)
    print("cold start (s): " + ", ".join(f"{k} {v:.1f}" for k, v in cold.items())
          + " (onnx: export + sessions, cached after the first run)")
    if not args.paper:
        results |= _end_to_end(model, engines, results["sizes"], args.model, args.repeats)
    if "bf16" in engines:
        results["bf16_colour_difference"] = bf16_levels(model)
        print(f"bf16 against fp32 colours (8-bit levels): {results['bf16_colour_difference']}")
    best = {size: max((k for k in engines if k not in ("naive", "numpy")), key=lambda k: r[k]["gflops"])
            for size, r in results["sizes"].items()}
    results["summary"] = "; ".join(f"{size}: best {best[size]} {r[best[size]]['fraction_of_peak']:.0%} of peak, "
                                   f"{r[best[size]]['gflops'] / r['naive']['gflops']:.2f}x naive"
                                   for size, r in results["sizes"].items())
    print(f"\nSUMMARY: {results['summary']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)

if __name__ == "__main__":
    main()
