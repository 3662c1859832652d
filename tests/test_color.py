import numpy as np
import pytest
import torch
from skimage import color as skcolor

from chromalift.color.lab import (
    AB_RANGE,
    float_to_uint8,
    lab_to_rgb,
    normalize_ab,
    normalize_l,
    rgb_to_lab,
    uint8_to_float,
    unnormalize_ab,
)


def test_rgb_to_lab_matches_scikit_image():
    rng = np.random.default_rng(0)
    rgb = rng.random((17, 23, 3))
    ref = skcolor.rgb2lab(rgb, illuminant="D65", observer="2")
    ours = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1).float()).permute(1, 2, 0).numpy()
    assert np.abs(ours - ref).max() < 0.05


def test_lab_to_rgb_matches_scikit_image_and_round_trips():
    rng = np.random.default_rng(1)
    rgb = rng.random((9, 11, 3))
    lab = skcolor.rgb2lab(rgb)
    ours = lab_to_rgb(torch.from_numpy(lab).permute(2, 0, 1).float()).permute(1, 2, 0).numpy()
    assert np.abs(ours - skcolor.lab2rgb(lab)).max() < 1e-3
    assert np.abs(ours - rgb).max() < 1e-3


def test_primaries_have_known_lab():
    red = torch.tensor([1.0, 0.0, 0.0])[:, None, None]
    l, a, b = rgb_to_lab(red)[:, 0, 0].tolist()
    assert l == pytest.approx(53.24, abs=0.05) and a == pytest.approx(80.09, abs=0.1) and b == pytest.approx(67.20, abs=0.1)


def test_normalisation_round_trip_and_range():
    ab = torch.linspace(-AB_RANGE, AB_RANGE, 11)
    assert torch.allclose(unnormalize_ab(normalize_ab(ab)), ab, atol=1e-5)
    assert normalize_ab(torch.tensor(0.0)) == 0.5            # grey is the middle of the Sigmoid
    assert normalize_ab(ab).min() >= 0 and normalize_ab(ab).max() <= 1
    assert normalize_l(torch.tensor([0.0, 100.0])).tolist() == [-0.5, 0.5]


def test_uint8_conversions_round_trip():
    u8 = torch.randint(0, 256, (2, 5, 6, 3), dtype=torch.uint8)
    assert torch.equal(float_to_uint8(uint8_to_float(u8)), u8)


def test_fast_inference_conversions_match_kornia():
    from chromalift.color.lab import l_from_rgb, l_from_uint8, lab_to_linear_rgb, linear_rgb_to_rgb, linear_to_uint8

    torch.manual_seed(0)
    u8 = torch.randint(0, 256, (2, 33, 47, 3), dtype=torch.uint8)
    rgb = u8.permute(0, 3, 1, 2).float() / 255
    assert torch.allclose(l_from_uint8(u8), rgb_to_lab(rgb)[:, :1], atol=1e-4)
    assert torch.allclose(l_from_rgb(rgb), rgb_to_lab(rgb)[:, :1], atol=1e-4)
    lab = torch.cat([torch.rand(2, 1, 33, 47) * 100, torch.randn(2, 2, 33, 47) * 60], 1)   # in and out of gamut
    assert torch.allclose(linear_rgb_to_rgb(lab_to_linear_rgb(lab)), lab_to_rgb(lab, clip=False), atol=1e-4)
    linear = torch.rand(2, 3, 33, 47) ** 3          # dense in the dark tones, where companding is steepest
    exact = float_to_uint8(linear_rgb_to_rgb(linear)).int()
    assert (linear_to_uint8(linear).int() - exact).abs().max() <= 1
    assert (linear_to_uint8(linear).int() == exact).float().mean() > 0.99


def test_conversions_match_kornia_to_float_precision():
    kornia = pytest.importorskip("kornia")   # the reference; training and inference do not need it
    torch.manual_seed(1)
    rgb = torch.rand(2, 3, 21, 19)
    assert torch.allclose(rgb_to_lab(rgb), kornia.color.rgb_to_lab(rgb), atol=1e-4)
    lab = torch.cat([torch.rand(2, 1, 21, 19) * 100, torch.randn(2, 2, 21, 19) * 60], 1)
    for clip in (True, False):
        assert torch.allclose(lab_to_rgb(lab, clip=clip), kornia.color.lab_to_rgb(lab, clip=clip), atol=1e-4)


@pytest.mark.slow
def test_colour_conversions_import_no_kornia():
    import subprocess
    import sys
    code = "import sys, chromalift.color.lab, chromalift.train.loop, chromalift.train.data.pack; print('kornia' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
