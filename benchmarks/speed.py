"""Inference speed against the machine's own limit, in one run.

    python benchmarks/speed.py [--model W.safetensors | --paper] [--compile] [--repeats N]

1. The limit: fp32 GEMM throughput of this machine (torch.mm, 2048^3), in GFLOP/s.
2. The network (both paths: global at its square size, local at HxW), batch 1 at 224x224, 512x512 and
   1024x768, and batch throughput at 224x224, for each engine:
     naive  - eager PyTorch as a peer would run it: unfused batch norm, NCHW, no_grad
     torch  - our eager engine: batch norm folded into convolutions, channels_last, inference_mode
     onnx   - ONNX Runtime on the exported graphs (what `colorize` uses on CPU)
     compile- torch.compile of the fused model (with --compile; its cold start reported separately)
   achieved GFLOP/s = 2 x multiply-accumulates (counted from the layer shapes) / time.
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

import numpy as np
import torch

from colorizer.backends import OnnxEngine, TorchEngine
from colorizer.checkpoint import load_weights
from colorizer.inference import DEFAULT_WEIGHTS
from colorizer.model import ColorizationNet, ModelConfig, count_macs

SIZES = [(224, 224), (512, 512), (768, 1024)]


def median_time(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def gemm_gflops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n ** 3 / median_time(lambda: torch.mm(a, b), repeats) / 1e9


class Naive:
    def __init__(self, model):
        self.model = model.eval()

    @torch.no_grad()
    def global_prior(self, l):
        return self.model.global_prior(l)

    @torch.no_grad()
    def local_ab(self, l, prior):
        return self.model.local_ab(l, prior)


class Compiled(TorchEngine):
    name = "compile"

    def __init__(self, model):
        super().__init__(model, torch.device("cpu"))
        self.model.global_prior = torch.compile(self.model.global_prior, dynamic=True)
        self.model.local_ab = torch.compile(self.model.local_ab, dynamic=True)


def peak_memory_mib(weights: str | None, h: int, w: int, backend: str) -> float:
    code = f"""
import resource, numpy as np
from colorizer.inference import Colorizer
c = Colorizer.load({weights!r}, backend={backend!r})
rgb = np.random.default_rng(0).random(({h}, {w}, 3), dtype=np.float32)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
c.colorize(rgb)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


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
    g = model.config.global_size
    peak = gemm_gflops()
    print(f"machine: {torch.get_num_threads()} threads; fp32 GEMM limit {peak:.1f} GFLOP/s")
    print(f"model: {name}")

    engines = {"naive": Naive(model), "torch": TorchEngine(model, torch.device("cpu"))}
    t = time.perf_counter()
    engines["onnx"] = OnnxEngine(model)
    cold = {"onnx": time.perf_counter() - t}
    if args.compile:
        engines["compile"] = Compiled(model)

    results = {"gemm_gflops": peak, "model": name, "sizes": {}, "cold_start_s": cold}
    print("\n| input | GFLOP | " + " | ".join(f"{e} ms | {e} % of GEMM" for e in engines) + " |")
    print("|---|---|" + "---|---|" * len(engines))
    for h, w in SIZES:
        flops = 2 * count_macs(model, h, w)
        l, lg = torch.rand(1, 1, h, w) - 0.5, torch.rand(1, 1, g, g) - 0.5
        row = {}
        for key, engine in engines.items():
            def run():
                prior, _ = engine.global_prior(lg)
                engine.local_ab(l, prior)
            if key == "compile":
                t = time.perf_counter()
                run()
                cold.setdefault("compile", 0.0)
                cold["compile"] += time.perf_counter() - t
            s = median_time(run, args.repeats)
            row[key] = {"ms": s * 1e3, "gflops": flops / s / 1e9, "fraction_of_gemm": flops / s / 1e9 / peak}
        results["sizes"][f"{w}x{h}"] = {"gflop": flops / 1e9, **row}
        print(f"| {w}x{h} | {flops / 1e9:.1f} | " + " | ".join(
            f"{row[e]['ms']:.0f} | {row[e]['fraction_of_gemm']:.0%}" for e in engines) + " |")

    b = args.batch
    lb, lgb = torch.rand(b, 1, 224, 224) - 0.5, torch.rand(b, 1, g, g) - 0.5
    results["batch_images_per_s"] = {}
    for key, engine in engines.items():
        def run():
            prior, _ = engine.global_prior(lgb)
            engine.local_ab(lb, prior)
        results["batch_images_per_s"][key] = b / median_time(run, max(3, args.repeats // 2))
    print(f"\nbatch {b} at 224x224, images/s: " + ", ".join(f"{k} {v:.1f}" for k, v in results["batch_images_per_s"].items()))
    print("cold start (s): " + ", ".join(f"{k} {v:.1f}" for k, v in cold.items())
          + " (onnx: export + sessions, cached after the first run)")

    if not args.paper:
        # the whole colorize() call: Lab conversion at full size, both paths, upsampling, gamut fit
        from colorizer.inference import Colorizer
        col = Colorizer(model, torch.device("cpu"))
        results["end_to_end_ms"] = {}
        for h, w in SIZES[1:]:
            rgb = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
            s = median_time(lambda: col.colorize(rgb, process_size=max(h, w)), max(3, args.repeats // 2))
            net = results["sizes"][f"{w}x{h}"]["torch"]["ms"]
            results["end_to_end_ms"][f"{w}x{h}"] = s * 1e3
            print(f"colorize() end to end at {w}x{h}: {s * 1e3:.0f} ms, of which the network {net / (s * 1e3):.0%}")
        mem = {f"{w}x{h}": peak_memory_mib(args.model, h, w, "auto") for h, w in [(768, 1024), (3000, 4000)]}
        results["peak_memory_mib"] = mem
        print("peak memory of colorize (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in mem.items()))

    best = {size: max((k for k in engines if k != "naive"), key=lambda k: r[k]["gflops"])
            for size, r in results["sizes"].items()}
    summary = "; ".join(f"{size}: best {best[size]} {r[best[size]]['fraction_of_gemm']:.0%} of GEMM, "
                        f"{r[best[size]]['gflops'] / r['naive']['gflops']:.2f}x naive"
                        for size, r in results["sizes"].items())
    results["summary"] = summary
    print(f"\nSUMMARY: {summary}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
