"""Metrics against reference implementations and known values; `colorize evaluate` end to end."""
import json

import numpy as np
import pytest
from helpers import gradient_rgb
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from chromalift.cli.main import main
from chromalift.evaluation.metrics import ab_error_auc, colorfulness, psnr_u8, ssim_u8, topk_correct


def test_psnr_and_ssim_match_scikit_image():
    rng = np.random.default_rng(0)
    a = gradient_rgb(40, 50)
    b = np.clip(a.astype(int) + rng.integers(-20, 20, a.shape), 0, 255).astype(np.uint8)
    assert psnr_u8(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), rel=1e-9)
    ref = structural_similarity(a, b, channel_axis=2, data_range=255, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False)
    assert ssim_u8(a, b) == pytest.approx(ref, rel=1e-9)
    assert psnr_u8(a, a) == float("inf") and ssim_u8(a, a) == pytest.approx(1.0)


def test_colourfulness_known_values():
    grey = np.full((10, 10, 3), 100, np.uint8)
    assert colorfulness(grey) == 0.0
    red = np.zeros((10, 10, 3), np.uint8)
    red[..., 0] = 255
    # rg = 255, yb = 127.5, no spread: 0.3 * sqrt(255^2 + 127.5^2)
    assert colorfulness(red) == pytest.approx(0.3 * np.hypot(255, 127.5))
    assert colorfulness(gradient_rgb(30, 30)) > colorfulness((gradient_rgb(30, 30) * 0.3 + 80).astype(np.uint8))


def test_auc_of_cumulative_ab_error():
    ab = np.zeros((4, 4, 2))
    assert ab_error_auc(ab, ab) == pytest.approx(1.0)
    far = ab + np.array([200.0, 0.0])
    assert ab_error_auc(far, ab) == pytest.approx(0.0)
    mid = ab + np.array([75.0, 0.0])   # every pixel's error is 75: within t for the upper half of [0, 150]
    assert ab_error_auc(mid, ab) == pytest.approx(0.5, abs=0.01)


def test_topk():
    import torch
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]])
    labels = torch.tensor([1, 2, -1])
    assert topk_correct(logits, labels, 1) == 1 and topk_correct(logits, labels, 2) == 1
    assert topk_correct(logits, labels, 3) == 2


def test_evaluate_command_writes_table_json_and_grid(tmp_path, tiny_weights, capsys):
    data = tmp_path / "photos"
    for c in ("a", "b"):
        (data / c).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(gradient_rgb(40, 56, seed=i)).save(data / c / f"{i}.png")
    out = tmp_path / "ev"
    assert main(["evaluate", str(data), "--model", str(tiny_weights), "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| photos (4) | ours |" in table and "| photos (4) | grey baseline |" in table
    result = json.loads((out / "results.json").read_text())[0]
    assert result["photos"] == 4 and {"top1", "top5"} <= result["ours"].keys()
    assert result["grey"]["colorfulness"] < 1.0 and result["grey"]["psnr"] > 10
    hue_keys = {"hue_agreement", "vegetation_green", "sky_blue", "neutral_chroma", "warm_share"}
    assert hue_keys <= result["ours"].keys() and hue_keys <= result["grey"].keys()
    assert result["grey"]["hue_agreement"] == 0 and "| photos | grey baseline | 0.0% |" in table
    grid = Image.open(out / "grid-photos.png")
    assert grid.height >= 4 * 192 and grid.width > 3 * 192   # 4 rows of grey | ours | truth


def test_a_set_with_nothing_to_count_shows_a_dash_and_writes_strict_json(tmp_path, tiny_weights, capsys):
    """Grey photos have no strong or near-colourless-but-coloured pixels: the hue metrics are undefined
    (NaN), shown as '-' and written as null (JSON has no NaN: browsers' JSON.parse refuses it)."""
    data = tmp_path / "grey"
    data.mkdir()
    Image.fromarray(gradient_rgb(40, 56, seed=0).mean(axis=2).astype(np.uint8)).convert("RGB").save(data / "0.png")
    out = tmp_path / "ev"
    assert main(["evaluate", str(data), "--model", str(tiny_weights), "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "nan" not in table.lower() and "| grey | grey baseline | - | - | - |" in table
    text = (out / "results.json").read_text()
    result = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in results.json"))[0]
    assert result["ours"]["hue_agreement"] is None and result["grey"]["warm_share"] is None


def test_hue_metrics_on_a_hand_made_image():
    from chromalift.evaluation.metrics import add_counts, hue_counts, hue_scores

    def ab(chroma, hue_deg):
        h = np.radians(hue_deg)
        return np.array([chroma * np.cos(h), chroma * np.sin(h)])

    # truth: 4 vegetation-green pixels, 2 sky-blue, 2 red, 2 near-grey
    truth = np.array([ab(30, 130)] * 4 + [ab(40, 250)] * 2 + [ab(50, 20)] * 2 + [ab(2, 0)] * 2)
    ours = np.array([ab(20, 140), ab(20, 125), ab(3, 130), ab(25, 60),        # green, green, too grey, brown
                     ab(30, 240), ab(30, 170),                                # blue, cyan-green (outside sky)
                     ab(30, 355), ab(30, 70),                                 # red across 0 degrees, brown
                     ab(6, 90), ab(2, 200)])                                  # tint on grey: 6 and 2
    s = hue_scores(hue_counts(ours, truth))
    assert s["vegetation_green"] == pytest.approx(2 / 4)
    assert s["sky_blue"] == pytest.approx(1 / 2)
    # agreement within 30 degrees: 140, 125 (veg), 240 (sky, 10 off), 355 (red at 20: 25 off) -> 4 of 8
    assert s["hue_agreement"] == pytest.approx(4 / 8)
    assert s["neutral_chroma"] == pytest.approx(4.0)
    # coloured (chroma > 5) ours: 8 pixels, warm (30-90): 60, 70, 90 -> 3 of 8
    assert s["warm_share"] == pytest.approx(3 / 8)
    # pooling: counts add, so two copies give the same shares; grey gets zero agreement
    assert hue_scores(add_counts(hue_counts(ours, truth), hue_counts(ours, truth))) == pytest.approx(s)
    grey = hue_scores(hue_counts(np.zeros_like(truth), truth))
    assert grey["hue_agreement"] == 0 and grey["vegetation_green"] == 0 and grey["neutral_chroma"] == 0


def test_hue_by_sector_splits_agreement_where_the_truth_lies():
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("hue_sectors", Path(__file__).parents[1] / "benchmarks" / "hue_sectors.py")
    hue_sectors = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hue_sectors)
    polar = lambda hue, chroma: [chroma * np.cos(np.radians(hue)), chroma * np.sin(np.radians(hue))]
    truth = np.array([polar(45, 30)] * 6 + [polar(135, 30)] * 3 + [polar(135, 3)])   # orange, green, near grey
    ours = np.array([polar(50, 20)] * 6 + [polar(50, 20), polar(140, 2), polar(140, 20)] + [polar(50, 20)])
    counts = hue_sectors.sector_counts(ours, truth)
    assert counts[0].sum() == 9 and counts[0][1] == 6 and counts[0][4] == 3       # the weak pixel is not counted
    assert counts[1][1] == 6 and counts[1][4] == 1                                  # agreed: all orange, one green
    assert counts[2][4] == 1 and counts[2].sum() == 1                               # left near grey: one green
