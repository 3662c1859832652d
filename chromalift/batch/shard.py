"""One run split across processes: torchrun's ranks, or a scheduler's array of jobs (--shard i/n).

Every process plans the same sorted list of (input, output) pairs and takes every n-th, starting at its
index: no two processes write the same file, neighbouring (similar) files spread evenly, and the split
does not depend on how far the others have got, so a rerun of any process resumes its own share
(outputs that exist are complete, being written atomically, and are skipped). Under torchrun the ranks
gather their counts on rank 0, which prints the one summary; independent shards each print their own.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1
    local: int = 0            # the process's index on its machine (torchrun's LOCAL_RANK): which GPU
    launched: bool = False    # started by torchrun: the processes can gather a summary

    @classmethod
    def parse(cls, spec: str | None, env=os.environ) -> Shard:
        """--shard i/n, or torchrun's RANK / WORLD_SIZE / LOCAL_RANK; ValueError with a one-line message."""
        world = int(env.get("WORLD_SIZE", "1"))
        if world > 1:
            if spec:
                raise ValueError("--shard is for schedulers without torchrun; under torchrun the ranks split the work")
            return cls(int(env["RANK"]), world, int(env.get("LOCAL_RANK", "0")), True)
        if not spec:
            return cls()
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
        if not m or not int(m[1]) < int(m[2]):
            raise ValueError(f"--shard {spec}: write it as i/n with 0 <= i < n (e.g. $SLURM_ARRAY_TASK_ID/"
                             "$SLURM_ARRAY_TASK_COUNT)")
        return cls(int(m[1]), int(m[2]))

    @property
    def split(self) -> bool:
        return self.count > 1

    def take(self, jobs: list) -> list:
        return jobs[self.index::self.count]

    def device(self, requested: str) -> str:
        """Under torchrun with `auto` and GPUs: one GPU per process on each machine."""
        import torch
        if self.launched and requested == "auto" and torch.cuda.is_available():
            return f"cuda:{self.local % torch.cuda.device_count()}"
        return requested

    def start(self) -> None:
        if self.launched:
            import torch.distributed as dist
            dist.init_process_group("gloo")   # only small Python objects travel: the summary

    def gather(self, obj) -> list:
        """Every process's `obj`, in rank order (torchrun), or [obj] alone."""
        if not self.launched:
            return [obj]
        import torch.distributed as dist
        out = [None] * self.count
        dist.all_gather_object(out, obj)
        return out

    def stop(self) -> None:
        if self.launched:
            import torch.distributed as dist
            if dist.is_initialized():
                dist.destroy_process_group()

    def json_path(self, path: str) -> str:
        """Independent shards each write their own --json summary: FILE.shard-i-of-n.json."""
        if not self.split or self.launched:
            return path
        p = Path(path)
        return str(p.with_name(f"{p.stem}.shard-{self.index}-of-{self.count}{p.suffix}"))

    def __str__(self) -> str:
        return f"{'rank' if self.launched else 'shard'} {self.index} of {self.count}"
