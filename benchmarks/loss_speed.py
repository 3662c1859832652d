"""What `--loss classify` costs per training step beside the paper's MSE, and what its cross-entropy costs
in the two memory layouts, all in one run.

    python benchmarks/loss_speed.py [--width 0.5 --crop 128 --batch-size 32 --threads 1 --repeats 3] [--fp32]

The bin head's logits are (batch, bins^2, crop/2, crop/2): 63 million numbers at the defaults. The model runs
channels_last, where the bins are already the innermost axis; handing that tensor to `cross_entropy` as
(B, Q, h, w) makes it transpose a copy forwards and backwards, while `losses.ab_bin_cross_entropy` views
it as (B*h*w, Q). On that view, torch's own cross-entropy writes and re-reads a float32 copy of every logit
forwards and again backwards; `losses._RowsCrossEntropy` works a chunk of rows at a time, in cache. Rows:
the loss alone (forward + backward; hard targets, then the soft targets of `--ab-soft 5`) each way, then a
whole training step (bf16 autocast where the CPU has it, Adam) with each loss.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from chromalift.color.lab import unnormalize_ab
from chromalift.inference.device import cpu_has_fast_bf16
from chromalift.model.network import ColorizationNet, ModelConfig, ab_bin_centres
from chromalift.train.losses import SoftBins, ab_bin_cross_entropy, ab_bin_soft_cross_entropy, ab_bin_targets, compute_loss


def best_of(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def loss_alone(args, bins: int = 22) -> dict[str, float]:
    side = args.crop // 2
    logits = torch.randn(args.batch_size, bins * bins, side, side).to(memory_format=torch.channels_last)
    logits = (logits.float() if args.fp32 else logits.bfloat16()).requires_grad_()   # fp32: as on an AVX2-only CPU
    ab = torch.rand(args.batch_size, 2, side, side) * 200 - 100
    target = ab_bin_targets(ab, bins)
    soft = SoftBins(unnormalize_ab(ab_bin_centres(ModelConfig(ab_bins=bins))).T, 5.0)

    def bins_last():
        return logits.permute(0, 2, 3, 1).reshape(-1, bins * bins).float()

    def soft_plain():
        nearest, weights = soft.encode(ab.permute(0, 2, 3, 1).reshape(-1, 2))
        flat = bins_last()
        return torch.logsumexp(flat, 1) - (flat.gather(1, nearest) * weights).sum(1)

    cases = {
        "hard targets: torch's cross-entropy on (B, Q, h, w) channels_last":
            lambda: F.cross_entropy(logits.float(), target, reduction="none"),
        "hard targets: torch's cross-entropy on the (B*h*w, Q) view":
            lambda: F.cross_entropy(bins_last(), target.reshape(-1), reduction="none"),
        "hard targets: a chunk of rows at a time (ours)": lambda: ab_bin_cross_entropy(logits, target),
        "soft targets: logsumexp and gather on the view": soft_plain,
        "soft targets: a chunk of rows at a time (ours)": lambda: ab_bin_soft_cross_entropy(logits, ab, soft),
    }
    return {name: best_of(lambda fn=fn: fn().mean().backward(), args.repeats) for name, fn in cases.items()}


def train_step(args, bins: int) -> float:
    config = ModelConfig(num_classes=100, width=args.width, global_size=args.crop, ab_bins=bins)
    model = ColorizationNet(config).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    l = torch.rand(args.batch_size, 1, args.crop, args.crop).to(memory_format=torch.channels_last)
    ab = torch.rand(args.batch_size, 2, args.crop // 2, args.crop // 2) * 200 - 100
    labels = torch.randint(0, 100, (args.batch_size,))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cpu_has_fast_bf16() and not args.fp32):
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
    p.add_argument("--fp32", action="store_true", help="float32 logits and steps, as on a CPU without fast bf16")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    alone = loss_alone(args)
    mse, classify = train_step(args, 0), train_step(args, 22)
    n, first = args.batch_size, next(iter(alone.values()))
    print(f"{args.threads} thread(s), {'float32' if args.fp32 else 'bfloat16'} logits\n")
    print("| what | seconds | images/s | ratio |\n|---|---|---|---|")
    for name, seconds in alone.items():
        print(f"| bin loss alone, {name} | {seconds:.3f} | | {seconds / first:.2f} |")
    print(f"| training step, MSE (the paper) | {mse:.3f} | {n / mse:.1f} | 1.00 |\n"
          f"| training step, `--loss classify` | {classify:.3f} | {n / classify:.1f} | {classify / mse:.2f} |")


if __name__ == "__main__":
    main()
