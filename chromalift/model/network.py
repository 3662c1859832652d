"""The network of Iizuka, Simo-Serra & Ishikawa, "Let there be Color!" (SIGGRAPH 2016).

Four networks and a classifier, as in the paper's table (stride -> output channels):

    low-level (shared)  s2->64  s1->128  s2->128  s1->256  s2->256  s1->512     512 x H/8 x W/8
    mid-level           s1->512  s1->256                                        256 x H/8 x W/8
    global              s2->512  s1->512  s2->512  s1->512  FC->1024  FC->512  FC->256
    fusion              tile global 256 over H/8 x W/8, concat with mid, per-pixel linear -> 256
    colorization        s1->128  up2  s1->64  s1->64  up2  s1->32  s1->2 (Sigmoid)  2 x H/2 x W/2
    classification      from the 512-d global layer: FC->256  FC->classes

Two options for the experiments of the colour issue, both off in the paper's network: `ab_bins` > 0 makes
the colorization network's last layer predict a distribution over an ab_bins x ab_bins grid of a*b*
bins (Zhang et al. 2016), decoded by the annealed mean (temperature `ab_temperature`) into the same ab
output, optionally over only the grid's bins that photos use (`ab_keep`, row-major; a cheaper head);
`global_features=False` is the paper's ablation without the global prior (the fusion sees zeros).
`global_flip` (inference only, like `ab_gain`) also runs the global path on the photo's mirror image and
averages the two: for the scene scores ("scenes") or for the scores and the colour prior ("all").
`coarse_blend` (inference only) is read by the photo path (inference/photo.py): where the local path sees a photo
larger than the global size, a second pass sees it at the global size (the scale the network trained at)
and that share of its a*b* is blended into the first's.

Every convolution is 3x3 with padding 1; stride-2 convolutions replace pooling; batch norm and ReLU
follow every layer except the two outputs. `ModelConfig.width` scales every channel count, so the
small variants we train on CPUs are the same code as the paper's network (width=1).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from chromalift.model.config import INFERENCE_SETTINGS, ModelConfig  # noqa: F401 (defined without torch, for the NumPy engine)


def conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    # bias is redundant before batch norm
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def fc_bn_relu(fin: int, fout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(fin, fout, bias=False), nn.BatchNorm1d(fout), nn.ReLU(inplace=True))


class LowLevelFeatures(nn.Sequential):
    """Shared by the local and the global path: (B, 1, H, W) -> (B, 512, H/8, W/8)."""

    def __init__(self, c: ModelConfig):
        super().__init__(
            conv_bn_relu(1, c.ch(64), 2),
            conv_bn_relu(c.ch(64), c.ch(128), 1),
            conv_bn_relu(c.ch(128), c.ch(128), 2),
            conv_bn_relu(c.ch(128), c.ch(256), 1),
            conv_bn_relu(c.ch(256), c.ch(256), 2),
            conv_bn_relu(c.ch(256), c.ch(512), 1),
        )


class MidLevelFeatures(nn.Sequential):
    """(B, 512, H/8, W/8) -> (B, 256, H/8, W/8)."""

    def __init__(self, c: ModelConfig):
        super().__init__(conv_bn_relu(c.ch(512), c.ch(512), 1), conv_bn_relu(c.ch(512), c.ch(256), 1))


class GlobalFeatures(nn.Module):
    """(B, 512, G/8, G/8) from the global copy -> the 512-d layer (for the classifier) and the 256-d prior."""

    def __init__(self, c: ModelConfig):
        super().__init__()
        self.convs = nn.Sequential(
            conv_bn_relu(c.ch(512), c.ch(512), 2),
            conv_bn_relu(c.ch(512), c.ch(512), 1),
            conv_bn_relu(c.ch(512), c.ch(512), 2),
            conv_bn_relu(c.ch(512), c.ch(512), 1),
        )
        side = c.global_size // 32  # 7 for the paper's 224
        self.fc1 = fc_bn_relu(c.ch(512) * side * side, c.ch(1024))
        self.fc2 = fc_bn_relu(c.ch(1024), c.ch(512))
        self.fc3 = fc_bn_relu(c.ch(512), c.ch(256))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mid = self.features(x)         # (B, 512): input of the classification network
        return mid, self.fc3(mid)      # (B, 256): the global prior

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(self.convs(x).flatten(1)))   # (B, 512 * 7 * 7) -> (B, 512)


class Fusion(nn.Module):
    """Tile the global prior over every position, concatenate with the mid-level features, per-pixel linear."""

    def __init__(self, c: ModelConfig):
        super().__init__()
        self.linear = nn.Sequential(
            nn.Conv2d(c.ch(256) * 2, c.ch(256), 1, bias=False), nn.BatchNorm2d(c.ch(256)), nn.ReLU(inplace=True)
        )

    def forward(self, mid: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        tiled = prior[:, :, None, None].expand(-1, -1, mid.shape[2], mid.shape[3])  # (B, 256, H/8, W/8)
        return self.linear(torch.cat([mid, tiled], dim=1))                          # (B, 256, H/8, W/8)


class Colorization(nn.Module):
    """(B, 256, H/8, W/8) -> normalised ab in [0, 1] at (B, 2, H/2, W/2), or with ab_bins the logits of
    the ab-bin distribution (B, bins, H/2, W/2) over the ab_bins^2 grid or its `ab_keep` bins; with
    head_scale 4 at H/4 x W/4 (the last two layers then cost a quarter)."""

    def __init__(self, c: ModelConfig):
        super().__init__()
        self.layers = nn.Sequential(
            conv_bn_relu(c.ch(256), c.ch(128)),
            nn.Upsample(scale_factor=2, mode="nearest"),
            conv_bn_relu(c.ch(128), c.ch(64)),
            conv_bn_relu(c.ch(64), c.ch(64)),
            nn.Upsample(scale_factor=2, mode="nearest") if c.head_scale == 2 else nn.Identity(),   # same layer numbers
            conv_bn_relu(c.ch(64), c.ch(32)),
            nn.Conv2d(c.ch(32), c.ab_outputs, 3, 1, 1),
            *([] if c.ab_bins else [nn.Sigmoid()]),
        )
        if c.ab_bins:   # the normalised (a, b) centre of every predicted bin
            self.register_buffer("centres", ab_bin_centres(c), persistent=False)
        self.temperature, self.gain = c.ab_temperature, c.ab_gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def decode(self, head: torch.Tensor) -> torch.Tensor:
        """The head's output -> normalised ab: itself (regression), or the annealed mean of the bins; then
        scaled about grey by the gain (1 in training)."""
        if hasattr(self, "centres"):   # the bins as the last axis: a view of channels_last logits, no copy
            z = head.float().permute(0, 2, 3, 1)
            p = torch.softmax(z / self.temperature if self.temperature != 1.0 else z, dim=-1)   # (B, h, w, Q)
            head = (p @ self.centres.T).permute(0, 3, 1, 2).contiguous()                   # (B, 2, h, w)
        return head if self.gain == 1.0 else ((head - 0.5) * self.gain + 0.5).clamp(0.0, 1.0)


def ab_bin_centres(c: ModelConfig) -> torch.Tensor:
    """(2, bins) normalised (a, b) centres of the head's bins: the ab_bins^2 grid row-major over (a, b), or
    its `ab_keep` bins."""
    centres = (torch.arange(c.ab_bins, dtype=torch.float32) + 0.5) / c.ab_bins
    grid = torch.stack(torch.meshgrid(centres, centres, indexing="ij"), 0).reshape(2, -1)
    return grid[:, list(c.ab_keep)] if c.ab_keep else grid


class Classification(nn.Sequential):
    """The 512-d global layer -> scene class scores."""

    def __init__(self, c: ModelConfig):
        super().__init__(fc_bn_relu(c.ch(512), c.ch(256)), nn.Linear(c.ch(256), c.num_classes))


class ColorizationNet(nn.Module):
    """Luminance in, normalised chrominance (and scene class scores) out.

    `forward(l)` is the training form: one low-level pass on a (B, 1, S, S) batch with S == global_size
    serves both paths. `local_ab(l, prior)` and `global_prior(l_global)` split the two paths for
    inference at any resolution and for style transfer (the prior from another image).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.low = LowLevelFeatures(config)
        self.mid = MidLevelFeatures(config)
        self.glob = GlobalFeatures(config)
        self.fusion = Fusion(config)
        self.colorization = Colorization(config)
        self.classification = Classification(config) if config.num_classes else None

    def global_prior(self, l_global: torch.Tensor, *, scores: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, 1, G, G) normalised L -> the 256-d prior and the class scores (None without a head). With
        `global_flip`, the scores ("scenes"), or the scores and the prior ("all"), come from the mean of the
        photo's and its mirror image's 512-d layer (one batch of 2B): a scene is the same scene mirrored.
        scores=False: the prior alone (the scores come back None), so "scenes" skips the mirror image."""
        flip, n = self.config.global_flip, l_global.shape[0]
        if flip == "scenes" and not scores:
            flip = "off"
        g512 = self.glob.features(self.low(torch.cat([l_global, l_global.flip(-1)]) if flip != "off" else l_global))
        mean = (g512[:n] + g512[n:]) / 2 if flip != "off" else g512
        logits = self.classification(mean) if self.classification is not None and scores else None
        return self.glob.fc3(mean if flip == "all" else g512[:n]), logits

    def local_ab(self, l: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) normalised L with H, W multiples of 8, and a (B, 256) prior -> (B, 2, H/2, W/2)."""
        if not self.config.global_features:
            prior = torch.zeros_like(prior)
        return self.colorization.decode(self.colorization(self.fusion(self.mid(self.low(l)), prior)))

    def forward(self, l: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, 1, G, G) -> the colorization head's output at G/2 (normalised ab in [0, 1], or the ab-bin
        logits with ab_bins; `colorization.decode` turns either into ab), class scores (B, classes) or None."""
        size = self.config.global_size
        if l.shape[-2:] != (size, size):
            raise ValueError(f"forward() takes {size}x{size} crops; got {tuple(l.shape[-2:])}: use local_ab()")
        low = self.low(l)                         # (B, 512, G/8, G/8), shared by both paths
        g512, prior = self.glob(low)
        if not self.config.global_features:
            prior = torch.zeros_like(prior)
        ab = self.colorization(self.fusion(self.mid(low), prior))
        logits = self.classification(g512) if self.classification is not None else None
        return ab, logits


def count_macs(model: ColorizationNet, height: int, width: int, *, training: bool = False) -> int:
    """Multiply-accumulates of one inference (local path at HxW, global path at GxG), by layer shapes; with
    training=True, of one training forward() on a GxG crop, whose two paths share the low-level features."""
    macs = 0

    def hook(module, inputs, output):
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            macs += output[0].numel() * k
        elif isinstance(module, nn.Linear):
            macs += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            g = model.config.global_size
            if training:
                model(torch.zeros(1, 1, g, g))
            else:
                prior, _ = model.global_prior(torch.zeros(1, 1, g, g))
                model.local_ab(torch.zeros(1, 1, height, width), prior)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return macs
