"""16-bit scans end to end: 48-bit colour TIFFs in (tifffile), ICC matrix/TRC profiles in float, 16-bit
TIFF out with its EXIF, XMP, IPTC and an sRGB profile; the round trip the archives issue asks for."""
from __future__ import annotations

import io
import sys

import numpy as np
import pytest
import torch
from helpers import ADOBE_RGB, IPTC, XMP, check_exif, exif_sample, icc_profile
from PIL import Image, ImageCms, ImageOps

from chromalift.cli.main import main
from chromalift.color.lab import rgb_to_lab
from chromalift.io.metadata import TIFF_IPTC
from chromalift.io.photos import read_photo, srgb_icc
from chromalift.io.sixteen_bit import _ORIENT, icc_to_srgb, tiff_with_16_bit_pixels

tifffile = pytest.importorskip("tifffile")   # the `tiff` extra, part of `dev`: present in CI

PROPHOTO = [(0.7977, 0.2880, 0.0), (0.1352, 0.7119, 0.0), (0.0313, 0.0001, 0.8249)]


def _moderate16(h=36, w=48) -> np.ndarray:
    """Moderate colours in fine 16-bit steps (inside sRGB once converted from Adobe RGB)."""
    y, x = np.mgrid[0:h, 0:w]
    base = 0.2 + 0.6 * x / (w - 1)                       # a ramp of luminance, tinted gently
    r = base + 0.06 * np.sin(y / 4.0)
    g = base + 0.04 * np.cos(x / 6.0)
    b = base - 0.05 * y / (h - 1)
    return (np.stack([r, g, b], -1) * 65535 + 0.5).astype(np.uint16)


def _tiff16(path, rgb16: np.ndarray, icc: bytes, orientation: int = 1) -> None:
    """A 48-bit TIFF with EXIF (IFD0, Exif and GPS directories), XMP, IPTC, DPI and an ICC profile."""
    tags = Image.Exif()
    tags.load(exif_sample().tobytes())
    tags[0x0112] = orientation
    tags[700], tags[TIFF_IPTC] = XMP, IPTC
    buf = io.BytesIO()
    Image.fromarray((rgb16 >> 8).astype(np.uint8)).save(buf, "TIFF", exif=tags, dpi=(1200, 1200), icc_profile=icc)
    path.write_bytes(tiff_with_16_bit_pixels(buf.getvalue(), rgb16))


@pytest.mark.parametrize("primaries, gamma", [(ADOBE_RGB, 2.19921875), (PROPHOTO, 1.8)])
def test_matrix_trc_profiles_in_float_agree_with_littlecms(primaries, gamma):
    icc = icc_profile("RGB ", gamma, primaries)
    rgb8 = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    ref = ImageCms.profileToProfile(Image.fromarray(rgb8), ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                    ImageCms.createProfile("sRGB"), renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    ours = icc_to_srgb(rgb8 / 255.0, icc)
    diff = np.abs(np.round(ours * 255) - np.asarray(ref).astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.3     # LittleCMS works in 16-bit fixed point, with its own rounding


def test_srgb_and_grey_profiles_and_foreign_ones():
    rgb = np.random.default_rng(1).random((8, 8, 3))
    assert np.abs(icc_to_srgb(rgb, srgb_icc()) - rgb).max() < 2e-3          # sRGB's parametric curves: identity
    grey = icc_to_srgb(np.repeat(rgb[..., :1], 3, -1), icc_profile("GRAY", 2.2))
    y = rgb[..., 0] ** (563 / 256)                                             # 2.2 as a u8Fixed8
    assert np.abs(grey[..., 0] - np.where(y > 0.0031308, 1.055 * y ** (1 / 2.4) - 0.055, 12.92 * y)).max() < 1e-9
    assert icc_to_srgb(rgb, b"not a profile" * 20) is None


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_as_pillow_turns_it(orientation):
    a = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    img = Image.fromarray(a)
    exif = img.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, "PNG", exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(buf)))
    assert np.array_equal(_ORIENT.get(orientation, lambda x: x)(a), expected)


def test_a_48_bit_tiff_round_trip_keeps_metadata_and_luminance(tmp_path, tiny_weights):
    rgb16 = _moderate16()
    icc = icc_profile("RGB ", 2.19921875, ADOBE_RGB)
    src, out = tmp_path / "scan.tif", tmp_path / "out.tif"
    _tiff16(src, rgb16, icc, orientation=6)
    photo = read_photo(src)
    assert photo.bits == 16 and photo.pixels.shape == (48, 36, 3) and not photo.warnings    # turned upright
    assert main([str(src), "-o", str(out), "--model", str(tiny_weights)]) == 0
    got = tifffile.imread(out)                                     # an independent reader: 16 bits, upright
    assert got.dtype == np.uint16 and got.shape == (48, 36, 3)
    assert len(np.unique(got[..., 1])) > 256, "more levels than 8 bits hold"
    lab = lambda rgb: rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1))
    out_l = lab(got / 65535.0)[0].numpy()
    in_l = lab(np.rot90(icc_to_srgb(rgb16 / 65535.0, icc), -1).copy())[0].numpy()     # the scan's L, in sRGB
    assert np.abs(out_l - in_l).max() < 0.01, "L kept within 16-bit rounding (8 bits: ~0.2)"
    # and that L is Adobe RGB's own luminance (the primaries' Y times the linear channels), up to the D50 (ICC)
    # against D65 (sRGB) white of the two Y's: 0.2 at most for these gently tinted colours
    y = ((rgb16 / 65535.0) ** 2.19921875) @ np.array([p[1] for p in ADOBE_RGB])
    adobe_l = 116 * np.where(y > 0.008856, np.cbrt(y), 7.787 * y + 4 / 29) - 16
    assert np.abs(out_l - np.rot90(adobe_l, -1)).max() < 0.2
    assert np.abs(rgb_to_lab(torch.from_numpy(got / 65535.0).permute(2, 0, 1))[1:].numpy()).mean() > 1, "and colour"
    img = Image.open(out)                                         # the metadata, read by Pillow
    check_exif(img)
    assert img.tag_v2[700] == XMP and bytes(img.tag_v2[TIFF_IPTC]) == IPTC and img.info["icc_profile"] == srgb_icc()
    assert img.tag_v2[258] == (16, 16, 16) and round(float(img.tag_v2[282])) == 1200
    assert "Colours added by chromalift" in img.tag_v2[305]


def test_a_16_bit_grey_tiff_with_a_gamma_profile_stays_16_bits(tmp_path, tiny_weights):
    y, x = np.mgrid[0:30, 0:40]
    grey = (2000 + 60000 * (x / 39) * (0.4 + 0.6 * y / 29)).astype(np.uint16)
    src = tmp_path / "grey16.tif"
    Image.fromarray(grey).save(src, icc_profile=icc_profile("GRAY", 2.2))          # mode I;16 with a grey profile
    photo = read_photo(src)
    assert photo.bits == 16 and not photo.warnings
    expected = icc_to_srgb(np.repeat((grey / 65535.0)[..., None], 3, -1), icc_profile("GRAY", 2.2))
    assert np.abs(photo.pixels - expected).max() < 1e-6
    assert main([str(src), "-o", str(tmp_path / "out.tif"), "--model", str(tiny_weights)]) == 0
    assert tifffile.imread(tmp_path / "out.tif").dtype == np.uint16


def test_without_tifffile_a_48_bit_tiff_is_read_at_8_bits_with_a_warning(tmp_path, monkeypatch):
    src = tmp_path / "scan.tif"
    _tiff16(src, _moderate16(), icc_profile("RGB ", 2.19921875, ADOBE_RGB))
    monkeypatch.setitem(sys.modules, "tifffile", None)              # import tifffile now raises ImportError
    photo = read_photo(src)
    assert photo.bits == 8 and photo.pixels.dtype == np.uint8
    assert len(photo.warnings) == 1 and "read at 8 bits (pip install 'chromalift[tiff]'" in photo.warnings[0]


def test_a_48_bit_tiff_whose_codec_is_missing_is_read_at_8_bits_with_the_reason(tmp_path, monkeypatch):
    src = tmp_path / "lzw.tif"
    _tiff16(src, _moderate16(), icc_profile("RGB ", 2.19921875, ADOBE_RGB))

    def no_codec(self, *a, **k):   # as tifffile says of an LZW scan without imagecodecs
        raise KeyError("<COMPRESSION.LZW: 5> requires the 'imagecodecs' package")

    monkeypatch.setattr(tifffile.TiffPage, "asarray", no_codec)
    photo = read_photo(src)
    assert photo.bits == 8 and len(photo.warnings) == 1
    assert "its 16 bits could not be read" in photo.warnings[0] and "imagecodecs" in photo.warnings[0]
