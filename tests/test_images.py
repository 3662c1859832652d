"""Every kind of input users really have, read by the library."""
import io

import numpy as np
import pytest
from helpers import gradient_rgb
from PIL import Image

from chromalift.io.photos import ImageError, read_photo, write_photo


def test_colour_and_grey_jpeg(tmp_path, colour_jpeg):
    p = read_photo(colour_jpeg)
    assert p.rgb.shape == (48, 64, 3) and p.rgb.dtype == np.float32 and p.alpha is None
    grey = tmp_path / "grey.jpg"
    Image.fromarray(gradient_rgb(30, 40)[..., 0]).save(grey)
    g = read_photo(grey)
    assert g.rgb.shape == (30, 40, 3) and np.allclose(g.rgb[..., 0], g.rgb[..., 2])


def test_16_bit_png_keeps_precision(tmp_path):
    values = (np.arange(64 * 32).reshape(32, 64) * 31).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    p = read_photo(path)
    assert np.allclose(p.rgb[..., 1], values / 65535.0, atol=1e-6)
    assert len(np.unique(p.rgb[..., 0])) > 256   # more levels than 8 bits would keep


def test_rgba_and_palette_png(tmp_path):
    rgba = np.dstack([gradient_rgb(20, 30), np.linspace(0, 255, 600).reshape(20, 30).astype(np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    p = read_photo(tmp_path / "a.png")
    assert np.array_equal(p.alpha, rgba[..., 3]) and p.rgb.shape == (20, 30, 3)
    pal = Image.fromarray(gradient_rgb(20, 30)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.save(tmp_path / "p.png")
    q = read_photo(tmp_path / "p.png")
    assert q.rgb.shape == (20, 30, 3) and q.alpha is None


def test_cmyk_jpeg(tmp_path):
    Image.fromarray(gradient_rgb(20, 30)).convert("CMYK").save(tmp_path / "c.jpg")
    p = read_photo(tmp_path / "c.jpg")
    assert p.rgb.shape == (20, 30, 3)
    assert abs(p.rgb.mean() - gradient_rgb(20, 30).mean() / 255) < 0.1


def test_exif_rotated_jpeg_comes_out_upright(tmp_path):
    img = Image.fromarray(gradient_rgb(20, 40))      # landscape pixels ...
    exif = Image.Exif()
    exif[0x0112] = 6                                 # ... shown rotated 90 degrees: portrait
    img.save(tmp_path / "r.jpg", exif=exif)
    assert read_photo(tmp_path / "r.jpg").rgb.shape == (40, 20, 3)


def test_odd_tiny_and_large_sizes(tmp_path):
    for h, w in [(7, 5), (517, 333), (3000, 4000)]:
        Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(tmp_path / f"{w}x{h}.png")
        assert read_photo(tmp_path / f"{w}x{h}.png").rgb.shape == (h, w, 3)


@pytest.mark.parametrize("case", ["text", "truncated", "empty", "missing", "folder"])
def test_bad_inputs_give_one_line_errors_naming_the_file(tmp_path, case):
    path = tmp_path / "bad.jpg"
    if case == "text":
        path.write_text("this is not a photo\n")
    elif case == "truncated":
        buf = io.BytesIO()
        Image.fromarray(gradient_rgb(200, 200)).save(buf, format="JPEG")
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "folder":
        path.mkdir()
    with pytest.raises(ImageError) as e:
        read_photo(path)
    msg = str(e.value)
    assert str(path) in msg and "\n" not in msg


@pytest.mark.slow
def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("L", (20000, 20000)).save(path)        # 400 MP of zeros compresses to a small file
    assert path.stat().st_size < 2_000_000
    with pytest.raises(ImageError, match=r"above the limit|decompression bomb"):
        read_photo(path, max_pixels=100_000_000)


def test_write_never_overwrites_without_asking(tmp_path):
    rgb = gradient_rgb(8, 8)
    out = tmp_path / "o.png"
    write_photo(out, rgb)
    with pytest.raises(ImageError, match="already exists"):
        write_photo(out, np.zeros_like(rgb))
    assert np.array_equal(np.asarray(Image.open(out)), rgb)
    write_photo(out, np.zeros_like(rgb), overwrite=True)
    assert np.asarray(Image.open(out)).max() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.png"]   # no temporary files left


def test_write_to_unwritable_folder_and_unknown_format(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        import os
        if os.access(locked, os.W_OK):   # running as root: permissions do not stop us; use a file as a parent
            target = tmp_path / "file.txt"
            target.write_text("x")
            bad = target / "o.png"
        else:
            bad = locked / "o.png"
        with pytest.raises(ImageError, match="cannot write"):
            write_photo(bad, gradient_rgb(4, 4))
    finally:
        locked.chmod(0o700)
    with pytest.raises(ImageError, match="unknown output format"):
        write_photo(tmp_path / "o.xyz", gradient_rgb(4, 4))
