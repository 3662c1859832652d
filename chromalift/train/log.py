"""A training run's log: log.jsonl (one JSON record per line, flushed as written) and TensorBoard."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from chromalift.train.config import TrainConfig


class TrainLog:
    """log.jsonl and TensorBoard (when installed), written by rank 0 only."""

    def __init__(self, out: Path, cfg: TrainConfig, main: bool):
        self.file = self.writer = None
        if not main:
            return
        (out / "args.json").write_text(json.dumps(asdict(cfg), indent=2))
        self.file = open(out / "log.jsonl", "a")  # noqa: SIM115 (open for the whole run; closed by close())
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(out / "tb"))
        except ImportError:
            pass

    def __call__(self, step: int, record: dict) -> None:
        if self.file is None:
            return
        self.file.write(json.dumps({"step": step, "time": time.time(), **record}) + "\n")
        self.file.flush()
        if self.writer is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)):
                    self.writer.add_scalar(k, v, step)

    def close(self) -> None:
        for f in (self.writer, self.file):
            if f is not None:
                f.close()
