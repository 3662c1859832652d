"""`colorize evaluate`: colorize the greyscale version of colour photos and compare with the truth.

Every number is reported beside the grey baseline (the input's L with ab = 0), which every
colorizer must beat on PSNR to be adding information rather than noise.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from chromalift.color.lab import grey_baseline, rgb_to_lab
from chromalift.evaluation.metrics import ab_error_auc, add_counts, colorfulness, hue_counts, hue_scores, psnr_u8, ssim_u8
from chromalift.inference.colorizer import DEFAULT_PROCESS_SIZE, Colorizer
from chromalift.io.atomic import atomic_write
from chromalift.io.photos import ImageError, find_images, read_photo


@dataclass
class Scores:
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    cf: list[float] = field(default_factory=list)
    auc: list[float] = field(default_factory=list)
    hue: dict = field(default_factory=dict)     # pooled pixel counts behind the hue metrics

    def add(self, out: np.ndarray, truth: np.ndarray, ab_out: np.ndarray, ab_truth: np.ndarray) -> None:
        self.psnr.append(psnr_u8(out, truth))
        self.ssim.append(ssim_u8(out, truth))
        self.cf.append(colorfulness(out))
        self.auc.append(ab_error_auc(ab_out, ab_truth))
        self.hue = add_counts(self.hue, hue_counts(ab_out, ab_truth))

    def summary(self, cf_truth: float, coloured: list[bool]) -> dict:
        """`coloured`: the photos whose truth has colour; PSNR is averaged over them (a grey truth is
        matched exactly by the grey baseline: an infinite PSNR that would swamp every mean)."""
        cf = float(np.mean(self.cf))
        psnr = [p for p, c in zip(self.psnr, coloured) if c]
        return {"psnr": float(np.mean(psnr)) if psnr else float("nan"), "ssim": float(np.mean(self.ssim)), "colorfulness": cf,
                "delta_colorfulness": cf - cf_truth, "auc": float(np.mean(self.auc)), **hue_scores(self.hue)}


def _ab(rgb_u8: np.ndarray) -> np.ndarray:
    return rgb_to_lab(torch.from_numpy(rgb_u8).permute(2, 0, 1).float() / 255)[1:].permute(1, 2, 0).numpy()


def evaluate(colorizer: Colorizer, folder: str | Path, *, limit: int | None = None,
             process_size: int | None = DEFAULT_PROCESS_SIZE, grid: str | Path | None = None,
             grid_count: int = 6, progress: bool = True) -> dict:
    """Metrics of `colorizer` and of the grey baseline over the photos under `folder`."""
    from tqdm import tqdm

    from chromalift.progress import bar as progress_bar

    folder = Path(folder)
    photos = find_images(folder)
    if not photos:
        raise FileNotFoundError(f"{folder}: no images found")
    if limit:
        photos = photos[:: max(1, len(photos) // limit)][:limit]
    ours, grey = Scores(), Scores()
    cf_truth, top1, top5, labelled = [], 0, 0, 0
    samples = set(np.linspace(0, len(photos) - 1, min(grid_count, len(photos))).round().astype(int).tolist())
    rows, failed, per_photo = [], [], []
    for i, path in enumerate(progress_bar(photos, desc=f"evaluate {folder.name}", unit="photo", disable=not progress)):
        try:
            truth = read_photo(path).u8                                          # 8-bit truth, as stored
        except ImageError as e:       # one bad photo costs its own row, not the whole evaluation
            failed.append(str(e))
            tqdm.write(f"colorize evaluate: skipped {e}")
            continue
        lab = rgb_to_lab(torch.from_numpy(truth).permute(2, 0, 1).float() / 255)
        grey_rgb = grey_baseline(lab[:1]).numpy()
        grey_in = grey_rgb.astype(np.float32) / 255                              # what the user would have
        out, logits = colorizer.colorize_and_classify(grey_in, process_size=process_size)   # one global pass
        ab_truth = lab[1:].permute(1, 2, 0).numpy()
        ours.add(out, truth, _ab(out), ab_truth)
        grey.add(grey_rgb, truth, np.zeros_like(ab_truth), ab_truth)
        cf_truth.append(colorfulness(truth))
        per_photo.append({"name": str(path.relative_to(folder)), "psnr": ours.psnr[-1], "psnr_grey": grey.psnr[-1],
                          "colorfulness": ours.cf[-1], "colorfulness_truth": cf_truth[-1]})
        label = _label(path, folder, colorizer.classes)
        if label is not None and logits is not None:
            top = logits[0].topk(min(5, logits.shape[1])).indices.tolist()
            top1 += int(top[0] == label)
            top5 += int(label in top)
            labelled += 1
        if i in samples:
            rows.append((grey_rgb, out, truth))
    if not cf_truth:
        raise FileNotFoundError(f"{folder}: none of the {len(photos)} images could be read")
    cft = float(np.mean(cf_truth))
    result = {"folder": str(folder), "photos": len(cf_truth), "failed": failed, "process_size": process_size,
              "colorfulness_truth": cft, "per_photo": per_photo}
    coloured = [bool(np.isfinite(p)) for p in grey.psnr]
    result |= {"ours": ours.summary(cft, coloured), "grey": grey.summary(cft, coloured), "psnr_photos": sum(coloured)}
    if labelled:
        result["ours"] |= {"top1": top1 / labelled, "top5": top5 / labelled}
    if grid:
        image = comparison_grid(rows)
        atomic_write(grid, lambda tmp: image.save(tmp, format="PNG"))
    return result


def _label(path: Path, folder: Path, classes: list[str]) -> int | None:
    parts = path.relative_to(folder).parts
    return classes.index(parts[0]) if len(parts) > 1 and parts[0] in classes else None


def comparison_grid(rows: list[tuple[np.ndarray, ...]], height: int = 192) -> Image.Image:
    """One row per photo: grey | ours | truth, each scaled to `height`."""
    tiles = []
    for row in rows:
        ims = [Image.fromarray(a) for a in row]
        w = round(ims[0].width * height / ims[0].height)
        tiles.append([im.resize((w, height), Image.Resampling.LANCZOS) for im in ims])
    width = max(sum(t.width for t in row) + 4 * (len(row) - 1) for row in tiles)
    grid = Image.new("RGB", (width, len(tiles) * (height + 4) - 4), "white")
    for r, row in enumerate(tiles):
        x = 0
        for tile in row:
            grid.paste(tile, (x, r * (height + 4)))
            x += tile.width + 4
    return grid


def markdown_table(results: list[dict]) -> str:
    """The field's table: one block of rows (ours, grey baseline) per evaluated folder, then the hue table."""
    head = "| set | method | PSNR (dB) | SSIM | CF | dCF | AuC | top-1 | top-5 |\n|---|---|---|---|---|---|---|---|---|"
    lines = [head]
    for r in results:
        name = Path(r["folder"]).name or r["folder"]
        for method in ("ours", "grey"):
            m = r[method]
            top = (f"{m['top1']:.1%} | {m['top5']:.1%}" if "top1" in m else "- | -")
            label = "ours" if method == "ours" else "grey baseline"
            lines.append(f"| {name} ({r['photos']}) | {label} | {_pct(m['psnr'], '.2f')} | {m['ssim']:.4f} | "
                         f"{m['colorfulness']:.1f} | {m['delta_colorfulness']:+.1f} | {m['auc']:.2%} | {top} |")
        lines.append(f"| {name} | truth | | | {r['colorfulness_truth']:.1f} | | | | |")
    return "\n".join(lines) + "\n\n" + hue_table(results)


def _pct(x: float, form: str = ".1%") -> str:
    return "-" if x != x else format(x, form)    # NaN: nothing to count (no such pixels; grey colours nothing)


def hue_table(results: list[dict]) -> str:
    """Hue agreement, vegetation -> green, sky -> blue, chroma on near-colourless truth, warm share."""
    lines = ["| set | method | hue agreement | vegetation -> green | sky -> blue | chroma on grey truth | "
             "warm share (truth) |", "|---|---|---|---|---|---|---|"]
    for r in results:
        name = Path(r["folder"]).name or r["folder"]
        for method in ("ours", "grey"):
            m = r[method]
            label = "ours" if method == "ours" else "grey baseline"
            lines.append(f"| {name} | {label} | {_pct(m['hue_agreement'])} | {_pct(m['vegetation_green'])} | "
                         f"{_pct(m['sky_blue'])} | {_pct(m['neutral_chroma'], '.1f')} | {_pct(m['warm_share'])} "
                         f"({_pct(m['warm_share_truth'])}) |")
    return "\n".join(lines)


def _finite(value):
    """JSON has no NaN or infinity: a metric with nothing to count (NaN) or of identical images (PSNR inf)
    is written as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def save_json(results: list[dict], path: str | Path) -> None:
    text = json.dumps(_finite(results), indent=2, allow_nan=False)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
