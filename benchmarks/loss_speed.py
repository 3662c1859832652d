"""What `--loss classify` costs per training step beside the paper's MSE, and what its cross-entropy costs
in the two memory layouts, all in one run.

    python benchmarks/loss_speed.py [--width 0.5 --crop 128 --batch-size 32 --threads 1 --repeats 3]

The bin head's logits are (batch, bins^2, crop/2, crop/2): 63 million numbers at the defaults. The model runs
channels_last, where the bins are already the innermost axis; handing that tensor to `cross_entropy` as
(B, Q, h, w) makes it transpose a copy forwards and backwards, while `losses.ab_bin_cross_entropy` views
it as (B*h*w, Q). Rows: the loss alone (forward + backward) both ways, then a whole training step (bf16 autocast
where the CPU has it, Adam) with each loss.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from chromalift.inference.device import cpu_has_fast_bf16
from chromalift.model.network import ColorizationNet, ModelConfig
from chromalift.train.losses import ab_bin_cross_entropy, ab_bin_targets, compute_loss


def best_of(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def loss_alone(args, bins: int = 22) -> tuple[float, float]:
    side = args.crop // 2
    logits = torch.randn(args.batch_size, bins * bins, side, side).to(memory_format=torch.channels_last)
    logits = logits.bfloat16().requires_grad_()
    target = ab_bin_targets(torch.rand(args.batch_size, 2, side, side) * 200 - 100, bins)

    def transposed():
        F.cross_entropy(logits.float(), target, reduction="none").mean().backward()

    def viewed():
        ab_bin_cross_entropy(logits, target).mean().backward()

    return best_of(transposed, args.repeats), best_of(viewed, args.repeats)


def train_step(args, bins: int) -> float:
    config = ModelConfig(num_classes=100, width=args.width, global_size=args.crop, ab_bins=bins)
    model = ColorizationNet(config).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    l = torch.rand(args.batch_size, 1, args.crop, args.crop).to(memory_format=torch.channels_last)
    ab = torch.rand(args.batch_size, 2, args.crop // 2, args.crop // 2) * 200 - 100
    labels = torch.randint(0, 100, (args.batch_size,))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cpu_has_fast_bf16()):
            loss = compute_loss(model, l, ab, labels, alpha=1 / 300, ab_weights=None, ab_bins=bins)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()

    return best_of(step, args.repeats)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    transposed, viewed = loss_alone(args)
    mse, classify = train_step(args, 0), train_step(args, 22)
    n = args.batch_size
    print(f"| what | seconds | images/s | ratio |\n|---|---|---|---|\n"
          f"| bin cross-entropy, (B, Q, h, w) in channels_last | {transposed:.3f} | | 1.00 |\n"
          f"| bin cross-entropy, viewed as (B*h*w, Q) (ours) | {viewed:.3f} | | {viewed / transposed:.2f} |\n"
          f"| training step, MSE (the paper) | {mse:.3f} | {n / mse:.1f} | 1.00 |\n"
          f"| training step, `--loss classify` | {classify:.3f} | {n / classify:.1f} | {classify / mse:.2f} |")


if __name__ == "__main__":
    main()
