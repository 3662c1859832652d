"""The training losses: the paper's MSE on normalised ab (optionally rebalanced), or Zhang et al.'s
cross-entropy over ab bins, plus alpha x the scene classification cross-entropy; the bins photos use, to
which a head can be cut (`ModelConfig.ab_keep`); and what rebalancing weighted each bin by, which
`checkpoint.logit_adjusted` takes back at inference."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from chromalift.color.lab import AB_RANGE, L_MAX, lab_to_rgb, normalize_ab, rgb_to_lab
from chromalift.train.data.cache import ab_bin_index, rebalance_weights


def ab_bin_targets(ab: torch.Tensor, bins: int) -> torch.Tensor:
    """(B, 2, h, w) ab in Lab units -> (B, h, w) index of its bin in the model's bins x bins grid."""
    idx = (normalize_ab(ab) * bins).long().clamp_(0, bins - 1)
    return idx[:, 0] * bins + idx[:, 1]


def _sampled_ab(images: np.ndarray, photos: int, seed: int):
    """The a*b* (B, 2, S, S) of a random sample of up to `photos` of these (N, S, S, 3) uint8 photos, 64 at
    a time (bounded memory)."""
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(images), size=min(photos, len(images)), replace=False))
    for start in range(0, len(chosen), 64):
        rgb = torch.from_numpy(np.asarray(images[chosen[start:start + 64]])).permute(0, 3, 1, 2).float() / 255.0
        yield rgb_to_lab(rgb)[:, 1:]


def used_ab_bins(images: np.ndarray, bins: int, *, photos: int = 3000, seed: int = 0) -> tuple[int, ...]:
    """The bins of the bins x bins grid that the colours of up to `photos` of these (N, S, S, 3) uint8 photos
    (a random sample) fall in, as row-major indices: what a head with `ab_keep` predicts; () (the whole
    grid) where they fall in fewer than two."""
    counts = torch.zeros(bins * bins, dtype=torch.long)
    for ab in _sampled_ab(images, photos, seed):
        counts += torch.bincount(ab_bin_targets(ab, bins).flatten(), minlength=bins * bins)
    used = tuple(torch.nonzero(counts).flatten().tolist())
    return used if len(used) >= 2 else ()


def head_bin_weights(images: np.ndarray, ab_hist: np.ndarray, rebalance: float, bins: int,
                     keep: tuple[int, ...] = (), *, photos: int = 2000, seed: int = 0) -> torch.Tensor:
    """The mean `--rebalance` loss weight of the training pixels whose target is each output of a head over
    the bins x bins grid (or its `keep` bins), from up to `photos` of these (N, S, S, 3) uint8 photos: the
    factor by which the weighted cross-entropy inflates that bin's probability. 1 for a bin no pixel hit."""
    weights, lookup = rebalance_weights(ab_hist, 1.0 - rebalance), head_bin_lookup(bins, keep)
    outputs = len(keep) or bins * bins
    sums, counts = torch.zeros(outputs, dtype=torch.float64), torch.zeros(outputs, dtype=torch.float64)
    for ab in _sampled_ab(images, photos, seed):
        target = ab_bin_targets(ab, bins) if lookup is None else lookup[ab_bin_targets(ab, bins)]
        sums += torch.bincount(target.flatten(), weights=weights[ab_bin_index(ab)].flatten().double(),
                               minlength=outputs)
        counts += torch.bincount(target.flatten(), minlength=outputs).double()
    return torch.where(counts > 0, sums / counts.clamp(min=1.0), torch.ones_like(sums)).float()


def head_bin_lookup(bins: int, keep: tuple[int, ...]) -> torch.Tensor | None:
    """(bins^2,) the head's output index for every bin of the grid with a cut head (`keep`): the kept bin
    itself, or for a colour no kept bin holds the nearest kept bin. None for a head over the whole grid."""
    if not keep:
        return None
    cells = torch.stack(torch.meshgrid(torch.arange(bins), torch.arange(bins), indexing="ij"), -1).reshape(-1, 2)
    return torch.cdist(cells.float(), cells[list(keep)].float()).argmin(dim=1)


def ab_bin_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, Q, h, w) bin logits and (B, h, w) bin indices -> (B, 1, h, w) per-pixel cross-entropy (in float32).

    The bins as the last axis: a view of channels_last logits, so no transposing copy of 63 million numbers
    forwards and backwards (benchmarks/loss_speed.py)."""
    b, _, h, w = logits.shape
    index = target.reshape(-1, 1)
    whole = torch.ones(index.shape, device=index.device)   # each pixel's one bin, with all the weight
    return _rows_cross_entropy(_bins_last(logits), lambda rows: (index[rows], whole[rows])).view(b, 1, h, w)


def _bins_last(logits: torch.Tensor) -> torch.Tensor:
    """(B, Q, h, w) -> (B*h*w, Q): a view where the logits are channels_last."""
    return logits.permute(0, 2, 3, 1).reshape(-1, logits.shape[1])


_ROWS = 4096   # logits rows per chunk and CPU thread: 3 MB as float32, so each thread's part of a chunk's passes
#               stays in cache, and each op has enough rows for every thread (2,048 in all: 2 threads were 1.1x one)


class _RowsCrossEntropy(torch.autograd.Function):
    """Per-row cross-entropy of (N, Q) logits against targets over a few bins, a chunk of rows at a time.

    -sum w log softmax = logsumexp - sum w x (the weights sum to one). Each chunk's float32 copy, its
    log-sum-exp and its gradient (softmax minus the target) are made while the chunk sits in cache, and
    the gradient is kept in the logits' dtype for backward: torch's own path writes and re-reads a float32
    copy of all N x Q logits forwards and again backwards, half a training step's loss time on a CPU
    (docs/speed.md)."""

    @staticmethod
    def forward(ctx, flat, targets, want_grad: bool):
        n = flat.shape[0]
        rows = _ROWS * torch.get_num_threads() if flat.device.type == "cpu" else n
        loss = torch.empty(n, dtype=torch.float32, device=flat.device)
        grad = torch.empty_like(flat) if want_grad else None
        with torch.autocast(flat.device.type, enabled=False):   # targets and sums in float32 whatever the step runs in
            for start in range(0, n, rows):
                _chunk(flat, targets, slice(start, min(start + rows, n)), loss, grad)
        ctx.save_for_backward(grad)
        return loss

    @staticmethod
    def backward(ctx, upstream):
        (grad,) = ctx.saved_tensors
        return grad * upstream[:, None].to(grad.dtype), None, None


def _chunk(flat, targets, part: slice, loss: torch.Tensor, grad: torch.Tensor | None) -> None:
    """One chunk of _RowsCrossEntropy: its rows' losses, and their gradient where `grad` is given."""
    nearest, weights = targets(part)
    x = flat[part].to(torch.float32, copy=True)
    lse = torch.logsumexp(x, dim=1)
    picked = x.gather(1, nearest)
    loss[part] = lse - (picked * weights).sum(dim=1)
    if grad is not None:
        p = torch.exp_(x.sub_(lse[:, None]))
        p.scatter_add_(1, nearest, -weights)
        grad[part] = p


def _rows_cross_entropy(flat: torch.Tensor, targets) -> torch.Tensor:
    """(N, Q) logits and targets(rows) -> ((n, k) bin indices, (n, k) weights) of a slice of rows -> (N,)
    float32 cross-entropy. Whether to make the gradient is decided here: inside forward,
    ctx.needs_input_grad says True under torch.no_grad too (validation would pay for a gradient)."""
    return _RowsCrossEntropy.apply(flat, targets, torch.is_grad_enabled() and flat.requires_grad)


SOFT_NEIGHBOURS = 5   # Zhang et al.: each colour's target spreads over its 5 nearest bins
_CELL = 2.0           # Lab units: the side of the ab cells that SoftBins lists candidate bins for


class SoftBins:
    """Zhang et al. 2016's soft-encoding of colours over a head's bins: each colour's SOFT_NEIGHBOURS nearest
    bins, weighted by exp(-d^2 / 2 sigma^2) and normalised.

    Measuring every colour against every bin (131k pixels x 193 bins a batch) is costly (docs/speed.md);
    instead each 2-unit cell of the ab plane lists the bins that can be among the nearest of any colour
    in it (those within its centre's 5th-nearest distance plus the cell's diagonal, by the triangle
    inequality), and a colour is measured against its cell's few: the same bins and weights, exactly."""

    def __init__(self, centres: torch.Tensor, sigma: float, *, ab_range: float = AB_RANGE):
        """centres: (Q, 2) the head's bin centres in Lab units."""
        centres = centres.float().cpu()
        self.sigma, self.ab_range, self.k = float(sigma), ab_range, min(SOFT_NEIGHBOURS, len(centres))
        side = math.ceil(2 * ab_range / _CELL)
        mids = (torch.arange(side, dtype=torch.float32) + 0.5) * _CELL - ab_range
        cells = torch.stack(torch.meshgrid(mids, mids, indexing="ij"), -1).reshape(-1, 2)
        d = torch.cdist(cells.double(), centres.double())                                  # (cells, Q)
        reach = d.kthvalue(self.k, dim=1).values + _CELL * math.sqrt(2.0)
        near = d <= reach[:, None]
        width = int(near.sum(1).max())
        # each cell's candidates first, padded with a far-away dummy bin (index Q) that is never among the nearest
        order = torch.where(near, d, torch.full_like(d, math.inf)).argsort(dim=1)[:, :width]
        self.candidates = torch.where(near.gather(1, order), order, torch.full_like(order, len(centres)))
        self.points = torch.cat([centres, torch.full((1, 2), 1e6)])                        # (Q + 1, 2)
        self.side = side

    def to(self, device: torch.device) -> SoftBins:
        self.candidates, self.points = self.candidates.to(device), self.points.to(device)
        return self

    def encode(self, colours: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 2) colours in Lab units -> ((N, k) indices of their nearest bins, (N, k) float32 weights)."""
        colours = colours.float()
        cell = ((colours + self.ab_range) / _CELL).long().clamp_(0, self.side - 1)   # beyond sRGB: the edge cells
        cands = self.candidates[cell[:, 0] * self.side + cell[:, 1]]                       # (N, width)
        d2 = (self.points[cands] - colours[:, None]).square().sum(-1)
        d2, pick = d2.topk(self.k, dim=1, largest=False)
        return cands.gather(1, pick), torch.softmax(-d2 / (2.0 * self.sigma * self.sigma), dim=1)


def ab_bin_soft_cross_entropy(logits: torch.Tensor, ab: torch.Tensor, soft: SoftBins) -> torch.Tensor:
    """(B, Q, h, w) bin logits, (B, 2, h, w) ab in Lab units -> (B, 1, h, w) cross-entropy (float32) against
    the soft targets of `soft`, encoded a chunk of pixels at a time."""
    b, _, h, w = logits.shape
    colours = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    return _rows_cross_entropy(_bins_last(logits), lambda rows: soft.encode(colours[rows])).view(b, 1, h, w)


def targets_at(ab: torch.Tensor, head: torch.Tensor) -> torch.Tensor:
    """ab (B, 2, H/2, W/2) as a head of `head`'s size sees them: pooled for a head at a quarter of the size."""
    return ab if ab.shape[-1] == head.shape[-1] else F.avg_pool2d(ab, ab.shape[-1] // head.shape[-1])


def saturated(ab: torch.Tensor, factor: float) -> torch.Tensor:
    """(B, 2, h, w) ab with each pixel's chroma multiplied by `factor`, hue kept; a pixel is scaled only as far
    as both channels stay within the bins' range (DDColor and BigColor train on targets saturated 1.2x)."""
    if factor == 1.0:
        return ab
    room = AB_RANGE / ab.abs().amax(dim=1, keepdim=True).clamp_min(1e-6)
    return ab * room.clamp(1.0, factor) if factor > 1.0 else ab * factor


def colourfulness_shortfall(head: torch.Tensor, l: torch.Tensor, centres: torch.Tensor,
                            temperature: float = 0.38) -> torch.Tensor:
    """DDColor's colourfulness loss, the mean over photos of 1 - CF / 100 (Hasler and Suesstrunk's CF of the
    sRGB photo on the 0-255 scale), of the bins' annealed mean at the head's size: a push towards vivid
    colour that does not look at the truth. head (B, Q, h, w) bin logits, l the network's (B, 1, H, W) input,
    centres (Q, 2) the bins in Lab units."""
    z = head.float().permute(0, 2, 3, 1)
    ab = (torch.softmax(z / temperature, dim=-1) @ centres).permute(0, 3, 1, 2)
    lum = (F.adaptive_avg_pool2d(l.float(), ab.shape[-2:]) + 0.5) * L_MAX
    r, g, b = (lab_to_rgb(torch.cat([lum, ab], dim=1)) * 255.0).flatten(2).unbind(1)
    rg, yb = r - g, 0.5 * (r + g) - b
    spread = (rg.var(dim=1, correction=0) + yb.var(dim=1, correction=0)).sqrt()
    cast = (rg.mean(dim=1).square() + yb.mean(dim=1).square()).sqrt()
    return (1.0 - (spread + 0.3 * cast) / 100.0).mean()


def compute_loss(model, l, ab, labels, *, alpha: float, ab_weights: torch.Tensor | None, ab_bins: int = 0,
                 ab_lookup: torch.Tensor | None = None, ab_soft: SoftBins | None = None, saturation: float = 1.0,
                 vivid: tuple[float, torch.Tensor] | None = None):
    """-> (total loss, colour loss (MSE, or cross-entropy over ab bins), classification CE or None, logits).
    A head over some of the grid's bins takes their `head_bin_lookup` as ab_lookup; soft targets take
    ab_soft = their SoftBins; the colour targets' chroma is multiplied by `saturation`; vivid = (weight, the
    bins' Lab centres) adds weight x `colourfulness_shortfall` to the colour loss."""
    pred, logits = model(l)
    ab = saturated(targets_at(ab, pred), saturation)
    if ab_bins and ab_soft is not None:
        se = ab_bin_soft_cross_entropy(pred, ab, ab_soft)
    elif ab_bins:
        target = ab_bin_targets(ab, ab_bins)
        se = ab_bin_cross_entropy(pred, target if ab_lookup is None else ab_lookup[target])
    else:
        se = (pred.float() - normalize_ab(ab)) ** 2                # (B, 2, h, w)
    if ab_weights is not None:
        se = se * ab_weights[ab_bin_index(ab)][:, None]
    color = se.mean()
    if vivid is not None:
        color = color + vivid[0] * colourfulness_shortfall(pred, l, vivid[1])
    scene = None
    if logits is not None and bool((labels >= 0).any()):
        scene = F.cross_entropy(logits.float(), labels, ignore_index=-1)
    return (color + alpha * scene if scene is not None else color), color, scene, logits
