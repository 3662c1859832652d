"""Training throughput and how much of each step waits for data, on a prepared cache.

    python benchmarks/train_speed.py --data CACHE [--width 0.5 --crop 128 --batch-size 32 --steps 30]

Runs the real trainer for a few steps in a temporary folder and reports images/s and the fraction of
wall time spent waiting for the data loader (the trainer logs both; this reads them back), for
--workers 0 (data in the training process) and the given --workers, then fp32 against bf16 autocast
(where the CPU computes bf16 natively, or on CUDA) with batches made in the training process or on the
device (--resident), all in one run so that the ratios compare.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from chromalift.train import TrainConfig, train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="prepared cache (colorize prepare)")
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    from chromalift.device import cpu_has_fast_bf16
    print(f"native bf16 on this CPU: {cpu_has_fast_bf16()}\n")
    print("| workers | precision | batches | images/s | data-wait fraction |\n|---|---|---|---|---|")
    runs = [(w, False, "off") for w in sorted({0, args.workers})] + [(args.workers, True, "off"), (0, True, "on")]
    for workers, amp, resident in runs:
        with tempfile.TemporaryDirectory() as out:
            train(TrainConfig(data=args.data, out=out, width=args.width, crop=args.crop, batch_size=args.batch_size,
                              steps=args.steps, log_every=args.steps, ckpt_every=10 ** 9, workers=workers,
                              device=args.device, progress=False, optimizer="adam", amp=amp, resident=resident))
            last = [json.loads(l) for l in (Path(out) / "log.jsonl").read_text().splitlines()][-1]
        bf16 = amp and (cpu_has_fast_bf16() or args.device.startswith("cuda"))
        print(f"| {workers} | {'bf16 autocast' if bf16 else 'fp32'} | {'on the device' if resident == 'on' else 'loader'} "
              f"| {last['images_per_s']:.1f} | {last['data_wait_fraction']:.1%} |")


if __name__ == "__main__":
    main()
