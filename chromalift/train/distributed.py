"""Multi-process data parallelism: process-group set-up and batch norm over the global batch.

Under torchrun each process sees a share of the global batch. Batch norm must still normalise over
the whole batch, or N processes would train a different model than one process does: on CUDA that is
torch's SyncBatchNorm; on CPU (gloo), where SyncBatchNorm does not run, `GlobalBatchNorm` all-reduces
the per-channel sums with autograd-aware collectives.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
import torch.nn as nn

_stats_group = None   # batch-norm statistics travel on their own group: see GlobalBatchNorm


def setup() -> tuple[int, int, int]:
    """-> (rank, world size, local rank); starts the process group when launched by torchrun."""
    global _stats_group
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, 0
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    _stats_group = dist.new_group()
    return dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics come from every process's share of the batch.

    Same parameters and buffers (and state-dict names) as the layer it replaces. Its all-reduce runs on
    a process group of its own: DDP all-reduces gradient buckets asynchronously during backward, and
    sharing one gloo group lets the two kinds of collective pair up across ranks in different orders."""

    @classmethod
    def replacing(cls, bn: nn.modules.batchnorm._BatchNorm) -> GlobalBatchNorm:
        new = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
        new.weight, new.bias = bn.weight, bn.bias
        new.running_mean, new.running_var, new.num_batches_tracked = bn.running_mean, bn.running_var, bn.num_batches_tracked
        return new.train(bn.training)

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        dims = [0] + list(range(2, x.dim()))
        group = _stats_group or dist.group.WORLD
        c = x.shape[1]
        shape = [1, c] + [1] * (x.dim() - 2)
        count = torch.tensor([x.numel() / c], dtype=x.dtype, device=x.device)
        # two passes (mean, then squared deviations) like torch's own batch norm: E[x^2] - E[x]^2
        # cancels badly in float32 when a channel's mean is large against its spread
        sums = dist_fn.all_reduce(torch.cat([x.sum(dims), count]), group=group)   # summed over processes
        n = sums[-1]
        mean = sums[:c] / n
        centred = x - mean.view(shape)
        var = dist_fn.all_reduce((centred * centred).sum(dims), group=group) / n   # biased, to normalise
        with torch.no_grad():
            self.num_batches_tracked += 1
            m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1), alpha=m)
        y = centred * torch.rsqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape)


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Make every batch norm layer normalise over the global batch (SyncBatchNorm on CUDA), in place."""
    if next(module.parameters()).is_cuda:
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for parent in list(module.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, GlobalBatchNorm):
                setattr(parent, name, GlobalBatchNorm.replacing(child))
    return module
