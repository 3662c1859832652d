"""What a training run is asked to do: every setting once, as one dataclass whose fields carry their help;
`colorize train` and the GPU window make their flags from it (torch-free, so `--help` answers at once)."""
from __future__ import annotations

import argparse
from dataclasses import MISSING, dataclass, field, fields


def setting(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    data: str = field(metadata={"help": "prepared cache (colorize prepare), pack (.npz) or photo folder; class "
                                        "subfolders give scene labels"})
    out: str = field(metadata={"help": "run folder for checkpoints (last.pt, best.pt), log.jsonl, TensorBoard logs and caches"})
    val: str | None = setting(None, "held-out cache or photo folder, validated every --eval-every steps")
    width: float = setting(1.0, "channel width multiplier (paper: 1.0)")
    crop: int = setting(224, "training crop = global input size (paper: 224)")
    prepare_size: int = setting(256, "square size photo folders are resized to when prepared (paper: 256)")
    min_color_std: float = setting(3.0, "skip near-grey photos whose ab std is below this (Lab units)")
    flip: bool = setting(True, "random horizontal flips")
    zoom: float = setting(1.0, "1 = off; Z > 1: each crop is a random box of 1/Z^2 to all of its area (aspect 3/4 "
                               "to 4/3) enlarged to the crop size, so objects appear up to Z times larger")
    batch_size: int = setting(32, "global batch size, split over processes")
    steps: int = setting(10000, "total optimisation steps (the most; --minutes may end the run first)")
    minutes: float = setting(0.0, "time budget in minutes of wall time (0 = none): the run stops and saves there, "
                                  "and a cosine schedule ends exactly there")
    schedule: str = setting("constant", "learning rate: constant, or cosine (linear warm-up, then cosine decay to the end)")
    warmup: float = setting(0.03, "warm-up as a fraction of the run (cosine)")
    final_lr: float = setting(0.02, "cosine ends at this fraction of --lr")
    init: str | None = setting(None, "start from these weights (.safetensors; same architecture; shared classes and "
                                     "ab bins keep their rows), e.g. the shipped model")
    optimizer: str = setting("adadelta", "adadelta (paper) or adam")
    lr: float | None = setting(None, "learning rate (default 1.0 for adadelta, 1e-3 for adam)")
    alpha: float = setting(1.0 / 300.0, "weight of the scene classification loss (paper: 1/300)")
    loss: str = setting("mse", "mse (the paper: regression of ab) or classify (cross-entropy over ab bins, decoded "
                               "by the annealed mean; Zhang et al. 2016)")
    ab_bins: int = setting(22, "grid side of the ab bins for --loss classify (22: about 11.6 Lab units a bin)")
    ab_prune: bool = setting(False, "with --loss classify, predict only the bins that the training photos' colours "
                                    "fall in (a cheaper head; their list is stored in the weights)")
    ab_soft: float = setting(0.0, "with --loss classify: 0 = each pixel's target is the bin its colour falls in; "
                                  "sigma > 0 (Lab units) = its 5 nearest bins weighted by a Gaussian of the distance "
                                  "(Zhang et al.'s soft-encoding, sigma 5)")
    head_scale: int = setting(2, "the colour head predicts at 1/2 of the crop (the paper) or 1/4 (Zhang et al.: its "
                                 "last two layers cost a quarter; the decoded a*b* are enlarged)")
    global_features: bool = setting(True, "the global prior (--no-global-features: the paper's ablation without it)")
    rebalance: float = setting(0.0, "0 = plain MSE (paper); s in (0, 1] weights each ab bin by 1/(s p + (1-s)/Q) "
                                    "(p its frequency, Q bins): rare, saturated colours count more (against sepia)")
    target_saturation: float = setting(1.0, "the colour targets' chroma times this (hue kept, within the ab range): "
                                            "1.2 = DDColor's and BigColor's more vivid targets")
    colorfulness_loss: float = setting(0.0, "with --loss classify: add W x DDColor's colourfulness loss (1 - CF/100 "
                                            "of the decoded photo; it pushes towards vivid colour)")
    color_sampling: float = setting(0.0, "0 = uniform; p > 0 samples photos with probability ~ colourfulness^p")
    class_weights: str = setting("", "PATTERN=W[,PATTERN=W...]: photos of the classes whose names match PATTERN "
                                     "(shell-style, e.g. 'fl_*=2') are drawn W times as often (a source's share of the mix)")
    seed: int = setting(0, "random seed (data order, crops, flips, init)")
    eval_every: int = setting(500, "validate every N steps")
    ckpt_every: int = setting(100, "save last.pt every N steps")
    log_every: int = setting(10, "log every N steps")
    workers: int | None = setting(None, "data-loading processes per training process (default: none on a CPU, where "
                                        "the batches are made between steps: a loader process would take the cores "
                                        "the step runs on; 1 elsewhere)")
    threads: int | None = setting(None, "CPU threads for torch")
    device: str = setting("auto", "auto, cpu, cuda, cuda:N or mps")
    compile: bool = setting(False, "torch.compile the model (pays a cold start; helps long GPU runs)")
    channels_last: bool = setting(True, "channels-last memory format")
    amp: bool = setting(True, "bf16 autocast on CUDA and on CPUs with native bf16 (AVX512-BF16, AMX)")
    resident: str = setting("auto", "keep the photos on the device and make batches there: auto (on CUDA), on, off")
    resume: bool = setting(False, "continue the run in --out from last.pt")
    progress: bool = setting(True, "show a progress bar")


def add_arguments(parser: argparse.ArgumentParser, names: list[str] | None = None, *, defaults: dict | None = None,
                  helps: dict | None = None) -> None:
    """A flag for each TrainConfig field (or those `names`): its type, default and help from the field;
    `defaults` and `helps` change them for another program (the GPU window). Fields without a default are
    required."""
    defaults, helps = defaults or {}, helps or {}
    for f in fields(TrainConfig):
        if names is not None and f.name not in names:
            continue
        flag, text = "--" + f.name.replace("_", "-"), helps.get(f.name, f.metadata["help"])
        default = defaults.get(f.name, f.default)
        if f.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=text)
        elif default is MISSING:
            parser.add_argument(flag, required=True, help=text)
        else:
            kind = {"int": int, "float": float}.get(str(f.type).split(" ")[0], str)   # "float | None" -> float
            parser.add_argument(flag, type=kind, default=default, help=text)
