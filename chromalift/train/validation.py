"""Validation during training: colour MSE, PSNR of the recoloured photos and of the grey baseline,
colourfulness, scene top-1/top-5, on a prepared cache or pack (centre crops)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from chromalift.color.lab import L_MAX, float_to_uint8, grey_baseline, lab_to_rgb, normalize_ab, unnormalize_ab
from chromalift.evaluation.metrics import colorfulness_u8, psnr_u8, topk_correct
from chromalift.model.network import ColorizationNet
from chromalift.train.data.batches import eval_batches
from chromalift.train.data.cache import Cache
from chromalift.train.losses import targets_at


@torch.no_grad()
def validate(model: ColorizationNet, cache: Cache, *, crop: int, device: torch.device, batch_size: int = 64) -> dict:
    """Colour MSE, PSNR of the recoloured photos and of the grey baseline, scene top-1/top-5."""
    was_training = model.training
    model.eval()
    n = n_grey = mse_sum = psnr_sum = grey_sum = cf_sum = cf_true_sum = 0.0
    top1 = top5 = labelled = 0
    for l, ab, labels in DataLoader(eval_batches(cache, batch_size, crop), batch_size=None):
        l, ab, labels = l.to(device), ab.to(device), labels.to(device)
        pred, logits = model(l)
        pred = model.colorization.decode(pred)
        mse_sum += float(((pred.float() - normalize_ab(targets_at(ab, pred))) ** 2).mean(dim=(1, 2, 3)).sum())
        L = (l + 0.5) * L_MAX
        up = lambda t: F.interpolate(t, size=L.shape[-2:], mode="bilinear", align_corners=False)
        ours = float_to_uint8(lab_to_rgb(torch.cat([L, up(unnormalize_ab(pred.float()))], 1))).cpu().numpy()
        ab_full = up(ab)
        truth = float_to_uint8(lab_to_rgb(torch.cat([L, ab_full], 1))).cpu().numpy()
        grey = grey_baseline(L).cpu().numpy()
        cf_sum += sum(colorfulness_u8(o) for o in ours)
        cf_true_sum += sum(colorfulness_u8(t) for t in truth)
        for o, g, t in zip(ours, grey, truth):        # both PSNRs over photos with colour (grey is exact on a grey one)
            if math.isfinite(grey_psnr := psnr_u8(g, t)):
                psnr_sum, grey_sum, n_grey = psnr_sum + psnr_u8(o, t), grey_sum + grey_psnr, n_grey + 1
        if logits is not None:
            top1 += topk_correct(logits, labels, 1)
            top5 += topk_correct(logits, labels, 5)
            labelled += int((labels >= 0).sum())
        n += l.shape[0]
    model.train(was_training)
    out = {"val_mse": mse_sum / n, "val_psnr": psnr_sum / max(n_grey, 1), "val_psnr_grey": grey_sum / max(n_grey, 1),
           "val_colorfulness": cf_sum / n, "val_colorfulness_truth": cf_true_sum / n}
    if labelled:
        out |= {"val_top1": top1 / labelled, "val_top5": top5 / labelled}
    return out
