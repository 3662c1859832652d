"""Colour hints (inference/hints.py): Levin et al.'s propagation on top of the network's colours, through the
library, the CLI and its refusals."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from chromalift.cli.main import main
from chromalift.color.lab import rgb_to_lab, uint8_to_float
from chromalift.inference.hints import HintError, Hints, parse_point, propagate, targets

RED = (200, 30, 30)


def ab_of(rgb) -> np.ndarray:
    lab = rgb_to_lab(uint8_to_float(torch.tensor(np.array(rgb, np.uint8).reshape(1, 1, 3))))
    return lab[1:, 0, 0].numpy()


def hue(ab: np.ndarray) -> float:
    return math.degrees(math.atan2(ab[1], ab[0]))


def two_regions(h=60, w=80):
    """L 35 on the left, 75 on the right (a strong edge), and a network that said bluish grey everywhere."""
    l = np.where(np.arange(w)[None, :] < w // 2, 35.0, 75.0) * np.ones((h, 1))
    net = np.stack([np.full((h, w), -5.0), np.full((h, w), -10.0)]).astype(np.float32)
    return l, net


def test_a_hint_recolours_its_region_and_stops_at_the_edge():
    l, net = two_regions()
    mask, hint = targets(Hints(points=((10, 30, RED),)), (60, 80), (60, 80))
    ab = propagate(l, net, mask, hint)
    want = hue(ab_of(RED))
    left, right = ab[:, :, : 40], ab[:, :, 40:]
    for y, x in ((2, 2), (57, 37), (30, 20)):            # far corners of the hinted region too
        assert abs(hue(left[:, y, x]) - want) < 3, (y, x)
        assert np.linalg.norm(left[:, y, x] - ab_of(RED)) < 0.1 * np.linalg.norm(ab_of(RED))
    assert np.abs(right - net[:, :, 40:]).max() < 0.5     # across the edge: the network's colours


def test_a_hint_keeps_its_colour_at_its_pixel_and_the_rest_stays_the_networks():
    rng = np.random.default_rng(0)
    l = rng.uniform(20, 80, (50, 70))                     # texture everywhere: the hint reaches only so far
    net = rng.normal(0, 10, (2, 50, 70)).astype(np.float32)
    mask, hint = targets(Hints(points=((35, 25, (20, 160, 40)),)), (50, 70), (50, 70))
    ab = propagate(l, net, mask, hint)
    assert np.abs(ab[:, 25, 35] - ab_of((20, 160, 40))).max() < 1.0
    assert not mask[0, 0] and np.abs(ab[:, 0, 0] - net[:, 0, 0]).max() < 1.0


def test_a_gradient_takes_the_hint_smoothly():
    h, w = 40, 400
    l = np.linspace(20, 80, w)[None, :] * np.ones((h, 1))   # 0.15 L a pixel: no edge anywhere
    net = np.zeros((2, h, w), np.float32)
    mask, hint = targets(Hints(points=((5, 20, RED),)), (h, w), (h, w))
    ab = propagate(l, net, mask, hint)
    a_row, red_a = ab[0, 20], ab_of(RED)[0]
    assert np.abs(np.diff(a_row)).max() < 2.0               # no jumps
    assert a_row[10] == pytest.approx(red_a, abs=0.5)       # the hint's colour near it
    assert np.all(np.diff(a_row[10:]) <= 1e-3)              # then falling off monotonically, away from the hint
    assert a_row[399] < red_a / 4


def test_strokes_are_hints_where_they_are_opaque():
    strokes = np.zeros((60, 80, 4), np.uint8)
    strokes[10:14, 5:30] = (*RED, 255)
    strokes[40:44, 50:70] = (20, 60, 220, 100)              # mostly transparent: not a hint
    mask, hint = targets(Hints(strokes=strokes), (60, 80), (30, 40))   # area-averaged to half size
    assert mask[5:7, 3:15].all() and not mask[20:22, 25:35].any()
    assert np.allclose(hint[:, 6, 8], ab_of(RED), atol=0.5)


def test_with_no_hints_the_output_is_bit_identical():
    from helpers import gradient_rgb

    from chromalift.inference.colorizer import Colorizer
    colour_photo = gradient_rgb(90, 130)
    c = Colorizer.load(device="cpu")
    plain = c.colorize(colour_photo)
    assert np.array_equal(c.colorize(colour_photo, hints=None), plain)
    assert np.array_equal(c.colorize(colour_photo, hints=Hints()), plain)
    empty = np.zeros((*colour_photo.shape[:2], 4), np.uint8)
    assert np.array_equal(c.colorize(colour_photo, hints=Hints(strokes=empty)), plain)


@pytest.mark.slow
def test_the_solve_runs_at_the_processing_size_whatever_the_photo(monkeypatch):
    import chromalift.inference.colorizer as inference
    from chromalift.inference.colorizer import Colorizer
    seen = []
    real = inference.propagate
    monkeypatch.setattr(inference, "propagate", lambda l, *a, **k: seen.append(l.shape) or real(l, *a, **k))
    c = Colorizer.load(device="cpu")
    photo = np.zeros((3000, 4000, 3), np.uint8)              # 12 MP
    photo[:, 2000:] = 200
    out = c.colorize(photo, hints=Hints(points=((3900, 100, RED),)))
    assert seen == [(192, 256)]                                  # the default processing size
    assert hue(ab_of(out[2900, 3900])) == pytest.approx(hue(ab_of(RED)), abs=6)
    assert np.array_equal(out[:, :1900], c.colorize(photo)[:, :1900])  # across the edge, as without hints


def test_hint_refusals_name_the_problem(tmp_path):
    assert parse_point("12,30.5,#C81E1E") == (12.0, 30.5, (200, 30, 30))
    for bad in ("12,30", "12,30,red", "x,3,#c81e1e", "1,2,#c81e1", "nan,2,#c81e1e"):
        with pytest.raises(HintError, match="--hint"):
            parse_point(bad)
    with pytest.raises(HintError, match="outside the photo"):
        Hints(points=((80, 5, RED),)).check(80, 60)
    with pytest.raises(HintError, match="the photo's size"):
        Hints(strokes=np.zeros((10, 10, 4), np.uint8)).check(80, 60)


def test_cli_hints(tmp_path, capsys):
    photo = np.zeros((120, 160, 3), np.uint8)
    photo[:, :80], photo[:, 80:] = 90, 180
    Image.fromarray(photo).save(tmp_path / "two.png")
    out = tmp_path / "out.png"
    assert main([str(tmp_path / "two.png"), "--hint", "40,60,#a04040", "-o", str(out)]) == 0   # in gamut at L 38
    got = np.asarray(Image.open(out).convert("RGB"))
    assert abs(hue(ab_of(got[10, 10])) - hue(ab_of((160, 64, 64)))) < 5
    assert main([str(tmp_path / "two.png"), "-o", str(tmp_path / "plain.png")]) == 0
    plain = np.asarray(Image.open(tmp_path / "plain.png").convert("RGB"))
    assert np.abs(got[:, 90:].astype(int) - plain[:, 90:]).max() <= 1
    strokes = np.zeros((120, 160, 4), np.uint8)
    strokes[50:60, 100:140] = (30, 60, 220, 255)
    Image.fromarray(strokes).save(tmp_path / "strokes.png")
    assert main([str(tmp_path / "two.png"), "--hints", str(tmp_path / "strokes.png"), "-o", str(tmp_path / "s.png")]) == 0
    blue = np.asarray(Image.open(tmp_path / "s.png").convert("RGB"))[100, 150].astype(int)
    assert blue[2] > blue[0] + 20
    capsys.readouterr()
    for args, says in ((["--hint", "400,60,#c81e1e"], "outside the photo (160x120 pixels)"),
                       (["--hint", "4,6,blue"], "write X,Y,#RRGGBB"),
                       (["--hints", str(tmp_path / "two.png")], "no transparency"),
                       (["--hint", "4,6,#0000ff", "--backend", "numpy"], "PyTorch backend")):
        assert main([str(tmp_path / "two.png"), *args, "-o", str(tmp_path / "bad.png")]) == 1
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad.png").exists()
    assert main([str(tmp_path / "two.png"), str(tmp_path / "strokes.png"), "--hint", "4,6,#0000ff",
                 "-o", str(tmp_path / "folder")]) == 1
    assert "exactly one photo" in capsys.readouterr().err
