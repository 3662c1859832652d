"""What a training run is asked to do: every `colorize train` flag, as one dataclass (torch-free, so that
`colorize train --help` answers at once)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainConfig:
    data: str                        # prepared cache, pack (.npz) or photo folder (class subfolders = scene labels)
    out: str                         # run folder: checkpoints, logs, caches
    val: str | None = None           # held-out cache or photo folder
    width: float = 1.0               # model width multiplier (paper: 1.0)
    crop: int = 224                  # training crop; also the global path's input size (paper: 224)
    prepare_size: int = 256          # photos are resized to this square when a photo folder is prepared
    min_color_std: float = 3.0       # near-grey photos (ab std below this, Lab units) are skipped
    flip: bool = True
    zoom: float = 1.0                # > 1: random boxes of 1/zoom^2 to all of the crop's area, enlarged to the crop
    batch_size: int = 32             # global batch, split across processes
    steps: int = 10000
    minutes: float = 0.0             # time budget for the steps (0: none); the schedule then ends at the budget
    schedule: str = "constant"       # "constant", or "cosine": linear warm-up then cosine decay to the end
    warmup: float = 0.03             # warm-up, as a fraction of the run (cosine schedule)
    final_lr: float = 0.02           # the cosine schedule ends at this fraction of --lr
    init: str | None = None          # weights (.safetensors) to start from, e.g. the shipped model
    optimizer: str = "adadelta"      # the paper's; or "adam"
    lr: float | None = None          # default: 1.0 for ADADELTA, 1e-3 for Adam
    alpha: float = 1.0 / 300.0       # weight of the classification loss (paper: 1/300)
    loss: str = "mse"                # "mse" (paper) or "classify": cross-entropy over ab bins (Zhang et al.)
    ab_bins: int = 22                # grid side of the ab bins for --loss classify (22 x 22, about 11.6 Lab units)
    ab_prune: bool = False           # --loss classify over only the grid's bins the training photos use (a cheaper head)
    ab_soft: float = 0.0             # --loss classify: 0 = each pixel's target is its bin; sigma > 0 (Lab units): its 5
                                     # nearest bins weighted by exp(-d^2 / 2 sigma^2) (Zhang et al.'s soft-encoding: 5)
    global_features: bool = True     # False: the paper's ablation without global features
    rebalance: float = 0.0           # 0: plain MSE (paper); s in (0, 1]: ab bin weights 1/(s p + (1-s)/Q), 1 = inverse frequency
    color_sampling: float = 0.0      # 0: uniform; p > 0: draw photos with probability ~ colourfulness^p
    class_weights: str = ""          # "PATTERN=W,...": photos of classes matching PATTERN (fnmatch) drawn W times as often
    seed: int = 0
    eval_every: int = 500
    ckpt_every: int = 100
    log_every: int = 10
    workers: int | None = None       # data-loader processes per training process; None: 0 on a CPU, else 1
    threads: int | None = None       # torch intra-op threads on CPU
    device: str = "auto"
    compile: bool = False            # torch.compile the model (pays a cold start; helps long GPU runs)
    channels_last: bool = True
    amp: bool = True                 # bf16 autocast on CUDA, and on CPUs with native bf16 (AVX512-BF16, AMX)
    resident: str = "auto"           # photos resident on the device, batches made there: auto (on CUDA), on, off
    resume: bool = False
    progress: bool = True
