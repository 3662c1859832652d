"""The network of network.py in NumPy, for inference only: batch norm folded into each layer, every 3x3
convolution one matrix product over its nine shifted copies of the input (OpenBLAS). Same outputs as the
PyTorch model within float32 rounding (tested); inference/numpy_engine.py runs photos through it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BN_EPS = 1e-5   # torch.nn.BatchNorm's default


def _folded(w: dict, layer: str, bn: str | None) -> tuple[np.ndarray, np.ndarray]:
    """A conv or linear layer with the batch norm after it folded in -> (weight as (inputs, outputs), bias)."""
    weight = w[f"{layer}.weight"]
    bias = w.get(f"{layer}.bias", np.zeros(weight.shape[0], np.float32))
    if bn is not None:
        scale = w[f"{bn}.weight"] / np.sqrt(w[f"{bn}.running_var"] + BN_EPS)
        weight = weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
        bias = (bias - w[f"{bn}.running_mean"]) * scale + w[f"{bn}.bias"]
    if weight.ndim == 4:   # (out, in, kh, kw) -> (kh * kw * in, out), the order of _conv's patches
        weight = weight.transpose(2, 3, 1, 0).reshape(-1, weight.shape[0])
    else:
        weight = weight.T
    return np.ascontiguousarray(weight, np.float32), bias.astype(np.float32)


def _conv(x: np.ndarray, layer: tuple, stride: int = 1, relu: bool = True) -> np.ndarray:
    """(H, W, C) -> a 3x3 convolution with padding 1 (torch's output size), then ReLU."""
    weight, bias = layer
    h, w, c = x.shape
    ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    patches = np.empty((ho, wo, 9, c), np.float32)
    for k in range(9):
        dy, dx = divmod(k, 3)
        patches[:, :, k] = padded[dy:dy + stride * (ho - 1) + 1:stride, dx:dx + stride * (wo - 1) + 1:stride]
    y = patches.reshape(ho * wo, 9 * c) @ weight
    y += bias
    return (np.maximum(y, 0.0, out=y) if relu else y).reshape(ho, wo, -1)


def _dense(x: np.ndarray, layer: tuple, relu: bool = True) -> np.ndarray:
    y = x @ layer[0] + layer[1]
    return np.maximum(y, 0.0, out=y) if relu else y


@dataclass
class NumpyNet:
    """The network's layers, folded: what network.py describes, for inference only."""
    config: dict
    layers: dict

    @classmethod
    def from_state(cls, config: dict, w: dict) -> NumpyNet:
        layers = {}
        for name in [f"low.{i}" for i in range(6)] + ["mid.0", "mid.1"] + [f"glob.convs.{i}" for i in range(4)] \
                + ["glob.fc1", "glob.fc2", "glob.fc3", "fusion.linear", "classification.0"] \
                + [f"colorization.layers.{i}" for i in (0, 2, 3, 5)]:
            if f"{name}.0.weight" in w:
                layers[name] = _folded(w, f"{name}.0", f"{name}.1")
        for name in ("colorization.layers.6", "classification.1"):
            if f"{name}.weight" in w:
                layers[name] = _folded(w, name, None)
        t = config.get("ab_temperature", 0.38)
        if config.get("ab_bins", 0) and t != 1.0:   # the annealed mean's logits / T, folded into the last layer
            layers["colorization.layers.6"] = tuple(a / np.float32(t) for a in layers["colorization.layers.6"])
            config = {**config, "ab_temperature": 1.0}
        return cls(config, layers)

    def _low(self, x: np.ndarray) -> np.ndarray:
        for i, stride in enumerate((2, 1, 2, 1, 2, 1)):
            x = _conv(x, self.layers[f"low.{i}"], stride)
        return x

    def global_prior(self, l_global: np.ndarray, *, scores: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """(G, G) normalised L -> the prior (C,) and the class scores (classes,) or None (scores=False: as in
        model.ColorizationNet.global_prior, the prior alone, so "scenes" skips the mirror image)."""
        g512 = mean = self._global_features(l_global)
        flip = self.config.get("global_flip", "off")   # model.ColorizationNet.global_prior: photo and mirror image
        flip = "off" if flip == "scenes" and not scores else flip
        if flip != "off":
            mean = (g512 + self._global_features(np.ascontiguousarray(l_global[:, ::-1]))) / 2
        prior = _dense(mean if flip == "all" else g512, self.layers["glob.fc3"])
        if "classification.1" not in self.layers or not scores:
            return prior, None
        return prior, _dense(_dense(mean, self.layers["classification.0"]), self.layers["classification.1"], relu=False)

    def _global_features(self, l_global: np.ndarray) -> np.ndarray:
        """(G, G) normalised L -> the global path's 512-d layer."""
        x = self._low(l_global[:, :, None])
        for i, stride in enumerate((2, 1, 2, 1)):
            x = _conv(x, self.layers[f"glob.convs.{i}"], stride)
        return _dense(_dense(x.transpose(2, 0, 1).reshape(-1), self.layers["glob.fc1"]), self.layers["glob.fc2"])

    def local_ab(self, l: np.ndarray, prior: np.ndarray) -> np.ndarray:
        """(H, W) normalised L, H and W multiples of 8, and the prior -> (H/s, W/s, 2) normalised ab, s the
        head scale (2, or 4)."""
        x = _conv(_conv(self._low(l[:, :, None]), self.layers["mid.0"]), self.layers["mid.1"])
        weight, bias = self.layers["fusion.linear"]
        c = x.shape[-1]
        if not self.config.get("global_features", True):
            prior = np.zeros_like(prior)
        x = _dense(x, (weight[:c], bias + prior @ weight[c:]))    # the tiled prior's share is the same everywhere
        x = _conv(x, self.layers["colorization.layers.0"]).repeat(2, 0).repeat(2, 1)
        x = _conv(_conv(x, self.layers["colorization.layers.2"]), self.layers["colorization.layers.3"])
        if self.config.get("head_scale", 2) == 2:
            x = x.repeat(2, 0).repeat(2, 1)
        x = _conv(x, self.layers["colorization.layers.5"])
        return self._decode(_conv(x, self.layers["colorization.layers.6"], relu=False))

    def _decode(self, head: np.ndarray) -> np.ndarray:
        """model.Colorization.decode: the Sigmoid (or the annealed mean of the ab bins), then the gain about grey."""
        bins = self.config.get("ab_bins", 0)
        if bins:
            t = self.config.get("ab_temperature", 0.38)   # 1 where from_state folded it
            z = head / np.float32(t) if t != 1.0 else head
            p = np.exp(z - z.max(axis=-1, keepdims=True))
            p /= p.sum(axis=-1, keepdims=True)
            centres = (np.arange(bins, dtype=np.float32) + 0.5) / bins
            grid = np.stack(np.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2)
            keep = self.config.get("ab_keep") or []
            ab = p @ (grid[np.asarray(keep, dtype=np.intp)] if keep else grid)   # a tuple from to_dict() too
        else:
            ab = 1.0 / (1.0 + np.exp(-head))
        gain = np.float32(self.config.get("ab_gain", 1.0))
        return ab if gain == 1.0 else np.clip((ab - 0.5) * gain + 0.5, 0.0, 1.0)
