"""Inference engines for the two paths: fused eager PyTorch (batch norm folded into the convolutions,
channels-last), or ONNX Runtime.

Both expose `global_prior(l_global, scores=True) -> (prior, logits)` and `local_ab(l, prior) -> ab01` on normalised
tensors, so `Colorizer` does not care which runs. 'auto' picks fused eager PyTorch, the faster of the two in
`benchmarks/speed.py` (docs/speed.md, "Defaults"); ONNX Runtime stays available (`--backend onnx`, one line
where it cannot run) and is what `colorize export --onnx` writes.
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from chromalift.io.atomic import atomic_write
from chromalift.model.network import ColorizationNet


def fuse_batchnorm(model: ColorizationNet) -> ColorizationNet:
    """A copy of an eval-mode model with each batch norm folded into the conv / linear layer before it, and
    an ab-bin head's annealed-mean temperature into its last layer (logits / T: one pass over every pixel's
    bins less, 8% of the local path at 1024 x 768)."""
    model = copy.deepcopy(model).eval()
    colour = model.colorization
    if hasattr(colour, "centres") and colour.temperature != 1.0:
        last = colour.layers[-1]
        with torch.no_grad():
            last.weight.div_(colour.temperature)
            last.bias.div_(colour.temperature)
        colour.temperature = 1.0
    for parent in list(model.modules()):
        children = list(parent.named_children())
        for (_name_a, a), (name_b, b) in itertools.pairwise(children):
            if isinstance(b, nn.modules.batchnorm._BatchNorm) and isinstance(a, (nn.Conv2d, nn.Linear)):
                scale = b.weight / torch.sqrt(b.running_var + b.eps)
                shape = (-1,) + (1,) * (a.weight.dim() - 1)
                with torch.no_grad():
                    bias = a.bias if a.bias is not None else torch.zeros_like(b.running_mean)
                    a.weight.mul_(scale.reshape(shape))
                    a.bias = nn.Parameter((bias - b.running_mean) * scale + b.bias)
                setattr(parent, name_b, nn.Identity())
    return model


class TorchEngine:
    name = "torch"

    def __init__(self, model: ColorizationNet, device: torch.device):
        self.model = fuse_batchnorm(model).to(device)
        if device.type == "cpu":
            self.model = self.model.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def global_prior(self, l_global: torch.Tensor, *, scores: bool = True):
        return self.model.global_prior(l_global, scores=scores)

    @torch.inference_mode()
    def local_ab(self, l: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        return self.model.local_ab(l.contiguous(memory_format=torch.channels_last), prior)


class _Global(nn.Module):
    """The global path: the prior and the scores, or (scores=False) the prior alone, which for global_flip
    "scenes" runs without the mirror image."""

    def __init__(self, model, scores: bool = True):
        super().__init__()
        self.model, self.scores = model, scores

    def forward(self, l_global):
        prior, logits = self.model.global_prior(l_global, scores=self.scores)
        return (prior, logits) if logits is not None else (prior,)


class _Local(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, l, prior):
        return self.model.local_ab(l, prior)


def export_onnx(model: ColorizationNet, folder: str | Path, *, prior_graph: bool = False) -> tuple[Path, Path]:
    """Write global.onnx (L at the global size -> prior, class scores) and local.onnx (L of any
    height and width, multiples of 8, and a prior -> ab in [0, 1] at half size) into `folder`. With
    prior_graph, for global_flip "scenes", also prior.onnx: the prior alone, without the mirror image that
    only the scores need (the engine's cache; `colorize export` writes the two files it names)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = fuse_batchnorm(model).cpu()
    g = model.config.global_size
    glob, local = folder / "global.onnx", folder / "local.onnx"
    prior_dim = model.fusion.linear[0].in_channels // 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outputs = ["prior", "logits"] if model.classification is not None else ["prior"]
        atomic_write(glob, lambda tmp: torch.onnx.export(
            _Global(model), (torch.zeros(1, 1, g, g),), tmp, input_names=["l_global"], output_names=outputs,
            dynamic_axes={"l_global": {0: "batch"}}, dynamo=False))
        if prior_graph and model.config.global_flip == "scenes":
            atomic_write(folder / "prior.onnx", lambda tmp: torch.onnx.export(
                _Global(model, scores=False), (torch.zeros(1, 1, g, g),), tmp, input_names=["l_global"], output_names=["prior"],
                dynamic_axes={"l_global": {0: "batch"}}, dynamo=False))
        atomic_write(local, lambda tmp: torch.onnx.export(
            _Local(model), (torch.zeros(1, 1, 64, 64), torch.zeros(1, prior_dim)), tmp,
            input_names=["l", "prior"], output_names=["ab"],
            dynamic_axes={"l": {0: "batch", 2: "height", 3: "width"}, "prior": {0: "batch"},
                          "ab": {0: "batch", 2: "half_height", 3: "half_width"}}, dynamo=False))
    return glob, local


ONNX_EXPORT = 2   # what export_onnx writes; a cache from an older export is not reused (2: prior.onnx)


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "chromalift" / "onnx"


def weights_key(model: ColorizationNet) -> str:
    h = hashlib.sha256(f"{ONNX_EXPORT} {model.config!r}".encode())
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class OnnxEngine:
    """ONNX Runtime sessions of the two paths, exported once per set of weights and cached on disk."""
    name = "onnx"

    def __init__(self, model: ColorizationNet, *, threads: int | None = None, cache: Path | None = None):
        import onnxruntime as ort

        folder = (cache or _cache_dir()) / weights_key(model)
        if not ((folder / "global.onnx").exists() and (folder / "local.onnx").exists()):
            tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
            try:
                export_onnx(model, tmp, prior_graph=True)
                os.replace(tmp, folder)
            except OSError:
                if not (folder / "local.onnx").exists():   # else another process got there first
                    raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        self.global_session = ort.InferenceSession(str(folder / "global.onnx"), options, providers=providers)
        self.local_session = ort.InferenceSession(str(folder / "local.onnx"), options, providers=providers)
        prior = folder / "prior.onnx"
        self.prior_session = ort.InferenceSession(str(prior), options, providers=providers) if prior.exists() else None

    def global_prior(self, l_global: torch.Tensor, *, scores: bool = True):
        feed = {"l_global": l_global.cpu().numpy().astype(np.float32)}
        if not scores and self.prior_session is not None:   # "scenes": no mirror image for the prior alone
            return torch.from_numpy(self.prior_session.run(None, feed)[0]), None
        out = self.global_session.run(None, feed)
        return torch.from_numpy(out[0]), (torch.from_numpy(out[1]) if len(out) > 1 and scores else None)

    def local_ab(self, l: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        feed = {"l": l.cpu().numpy().astype(np.float32), "prior": prior.cpu().numpy().astype(np.float32)}
        return torch.from_numpy(self.local_session.run(None, feed)[0])


def make_engine(model: ColorizationNet, device: torch.device, backend: str = "auto"):
    """'auto' and 'torch': fused PyTorch (the fastest measured, see the module docstring); 'onnx':
    ONNX Runtime on CPU; asked for and unable to run, it fails loudly rather than quietly using PyTorch."""
    if backend not in ("auto", "onnx", "torch"):
        raise ValueError(f"unknown backend {backend!r}; choose auto, onnx or torch")
    if backend == "onnx":
        if device.type != "cpu":
            raise ValueError("--backend onnx runs on the CPU; use --device cpu or --backend torch")
        try:
            return OnnxEngine(model)
        except ImportError as e:
            raise ValueError(f"--backend onnx needs the onnx extra ({e.name or e} is missing): "
                             "pip install 'chromalift[onnx]', or use --backend torch") from None
        except OSError as e:   # the cache of exported graphs cannot be written
            raise ValueError(f"--backend onnx: cannot write its cache in {_cache_dir()} ({e.strerror or e}); set "
                             "XDG_CACHE_HOME to a writable folder, or use --backend torch") from None
        except Exception as e:  # noqa: BLE001 (onnx and onnxruntime raise types of their own)
            raise ValueError(f"--backend onnx: ONNX Runtime cannot run here ({str(e).splitlines()[0][:100]}); "
                             "use --backend torch") from None
    return TorchEngine(model, device)
