"""What archives need: the input's metadata kept in the output (EXIF, XMP, IPTC, DPI, PNG text) with a
note of who added the colours, JPEG/WebP quality, --format keep, and the scene classes shown and written
as JSON. Every file is made in the test, carrying what it checks."""
from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from helpers import ADOBE_RGB, IPTC, XMP, check_exif, exif_sample, gradient_rgb, icc_profile
from PIL import Image, ImageOps, PngImagePlugin

from chromalift.cli.main import main
from chromalift.io.metadata import PHOTOSHOP_IPTC, TIFF_IPTC


def _source(path: Path, fmt: str) -> Path:
    img = Image.fromarray(gradient_rgb(20, 30)).convert("L")       # a grey scan, 30 wide, 20 high
    options = {"exif": exif_sample().tobytes(), "dpi": (600, 600)}
    if fmt == "JPEG":
        buf = io.BytesIO()
        img.save(buf, "JPEG", xmp=XMP, comment=b"scanned by the county archive", quality=95, **options)
        from chromalift.io.metadata import with_iptc
        path.write_bytes(with_iptc(buf.getvalue(), IPTC))
    elif fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("Title", "Wedding")
        info.add_itxt("Description", "Hochzeit in Köln")
        info.add_itxt("XML:com.adobe.xmp", XMP.decode())
        img.save(path, "PNG", pnginfo=info, **options)
    elif fmt == "TIFF":                                        # XMP and IPTC are tags beside the EXIF ones
        tags = Image.Exif()
        tags.load(exif_sample().tobytes())                           # (Pillow writes nested IFDs of a loaded Exif)
        tags[700], tags[TIFF_IPTC] = XMP, IPTC
        img.save(path, "TIFF", exif=tags, dpi=(600, 600))
    else:
        img.save(path, "WEBP", xmp=XMP, exif=options["exif"])
    return path


@pytest.mark.parametrize("fmt, ext", [("JPEG", ".jpg"), ("PNG", ".png"), ("TIFF", ".tif"), ("WEBP", ".webp")])
def test_metadata_is_kept_where_the_format_holds_it(tmp_path, tiny_weights, fmt, ext):
    src = _source(tmp_path / f"scan{ext}", fmt)
    out = tmp_path / f"out{ext}"
    assert main([str(src), "-o", str(out), "--model", str(tiny_weights)]) == 0
    img = Image.open(out)
    source = Image.open(src)
    assert source.getexif().get(0x0112) == 6
    assert img.size == ImageOps.exif_transpose(source).size     # turned upright, orientation reset to 1
    check_exif(img)
    assert img.info.get("xmp") == XMP
    if fmt != "WEBP":
        assert tuple(round(d) for d in img.info["dpi"]) == (600, 600)
    if fmt == "JPEG":
        assert img.info["photoshop"][PHOTOSHOP_IPTC] == IPTC
        comment = img.info["comment"]
        assert comment.startswith(b"scanned by the county archive") and b"Colours added by chromalift" in comment
        assert b"tiny.safetensors" in comment                   # which model
    if fmt == "PNG":
        assert img.text["Title"] == "Wedding" and img.text["Description"] == "Hochzeit in Köln"
        assert "Colours added by chromalift" in img.text["Comment"]
    if fmt == "TIFF":
        assert img.tag_v2[TIFF_IPTC] == IPTC and "chromalift" in img.tag_v2[0x0131]


def test_a_jpeg_made_into_png_keeps_what_png_holds(tmp_path, tiny_weights):
    src = _source(tmp_path / "scan.jpg", "JPEG")
    assert main([str(src), "-o", str(tmp_path / "out.png"), "--model", str(tiny_weights)]) == 0
    img = Image.open(tmp_path / "out.png")
    check_exif(img)
    assert img.info.get("xmp") == XMP


def test_quality_and_format_keep(tmp_path, tiny_weights):
    photos = tmp_path / "in"
    photos.mkdir()
    Image.fromarray(gradient_rgb(64, 64)).save(photos / "a.jpg", quality=95)
    Image.fromarray(gradient_rgb(32, 32, seed=1)).save(photos / "b.png")
    for q in (30, 95):
        assert main([str(photos), "-o", str(tmp_path / f"q{q}"), "--format", "keep", "--quality", str(q),
                     "--model", str(tiny_weights)]) == 0
    assert sorted(p.name for p in (tmp_path / "q30").iterdir()) == ["a.jpg", "b.png"]
    assert (tmp_path / "q30" / "a.jpg").stat().st_size < 0.7 * (tmp_path / "q95" / "a.jpg").stat().st_size
    assert main([str(photos / "a.jpg"), "--quality", "0", "--model", str(tiny_weights)]) == 1


def test_show_class_and_json_summary(tmp_path, tiny_weights, capsys):
    photos = tmp_path / "in"
    photos.mkdir()
    Image.fromarray(gradient_rgb(24, 32)).save(photos / "a.png")
    (photos / "broken.jpg").write_bytes(b"not a photo")
    report = tmp_path / "summary.json"
    assert main([str(photos), "-o", str(tmp_path / "out"), "--show-class", "--json", str(report),
                 "--model", str(tiny_weights)]) == 1
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith(str(photos / "a.png")))
    names = [part.rsplit(" ", 1)[0] for part in line.split(": ", 1)[1].split(", ")]
    assert len(names) == 3 and set(names) <= {"a", "b", "c"}           # the classes stored with the weights
    records = {Path(r["input"]).name: r for r in json.loads(report.read_text())}
    ok, bad = records["a.png"], records["broken.jpg"]
    assert ok["output"].endswith("a.png") and ok["error"] is None and ok["seconds"] > 0
    assert len(ok["classes"]) == 3 and abs(sum(c["p"] for c in ok["classes"]) - 1) < 0.2
    assert ok["classes"][0]["p"] >= ok["classes"][1]["p"] >= ok["classes"][2]["p"]
    assert bad["output"] is None and "broken.jpg" in bad["error"]
    # the summary may not be written over an input
    assert main([str(photos / "a.png"), "--json", str(photos / "a.png"), "--model", str(tiny_weights)]) == 1


# ---------------------------------------------------------------- colour management


def _lab_l(y: np.ndarray) -> np.ndarray:
    f = np.where(y > 0.008856, np.cbrt(y), 7.787 * y + 4 / 29)
    return 116 * f - 16


def _patches() -> np.ndarray:
    """Moderate colours (inside sRGB once converted from Adobe RGB) and greys, 8-bit."""
    rng = np.random.default_rng(3)
    grey = rng.integers(60, 190, size=(12, 16, 1))
    return np.clip(grey + rng.integers(-30, 31, size=(12, 16, 3)), 0, 255).astype(np.uint8)


def test_an_adobe_rgb_photo_is_converted_before_l_is_taken(tmp_path, tiny_weights, capsys):
    from chromalift.io.photos import read_photo
    rgb = _patches()
    Image.fromarray(rgb).save(tmp_path / "adobe.png", icc_profile=icc_profile("RGB ", 2.19921875, ADOBE_RGB))
    Image.fromarray(rgb).save(tmp_path / "untagged.png")
    # the reference: Adobe RGB's own luminance, Y = sum of the primaries' Y times the linear channels
    y = (np.asarray(rgb, np.float64) / 255) ** 2.19921875 @ np.array([p[1] for p in ADOBE_RGB])
    reference = _lab_l(y)
    import torch

    from chromalift.color.lab import l_from_rgb
    L = lambda photo: l_from_rgb(torch.from_numpy(photo.rgb).permute(2, 0, 1)[None])[0, 0].numpy()
    ours, naive = L(read_photo(tmp_path / "adobe.png")), L(read_photo(tmp_path / "untagged.png"))
    assert np.abs(ours - reference).mean() < 0.6 and np.abs(ours - reference).max() < 2.0
    assert np.abs(naive - reference).mean() > 2 * np.abs(ours - reference).mean()     # it matters
    # the output says it is sRGB
    assert main([str(tmp_path / "adobe.png"), "-o", str(tmp_path / "out.png"), "--model", str(tiny_weights)]) == 0
    from PIL import ImageCms
    profile = ImageCms.ImageCmsProfile(io.BytesIO(Image.open(tmp_path / "out.png").info["icc_profile"]))
    assert "sRGB" in ImageCms.getProfileDescription(profile)


def test_a_grey_scan_with_a_gamma_profile_and_an_unreadable_profile(tmp_path, tiny_weights, capsys):
    from chromalift.io.photos import read_photo
    grey = np.linspace(20, 235, 16 * 12).reshape(12, 16).astype(np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "g.png", icc_profile=icc_profile("GRAY", 1.0))   # linear grey
    photo = read_photo(tmp_path / "g.png")
    import torch

    from chromalift.color.lab import l_from_rgb
    ours = l_from_rgb(torch.from_numpy(photo.rgb).permute(2, 0, 1)[None])[0, 0].numpy()
    assert np.abs(ours - _lab_l(grey / 255.0)).mean() < 0.8              # L of a linear grey, not of sRGB
    Image.fromarray(grey, "L").save(tmp_path / "g22.png", icc_profile=icc_profile("GRAY", 2.2))
    ours = l_from_rgb(torch.from_numpy(read_photo(tmp_path / "g22.png").rgb).permute(2, 0, 1)[None])[0, 0].numpy()
    assert np.abs(ours - _lab_l((grey / 255.0) ** 2.2)).mean() < 0.8
    Image.fromarray(grey, "L").save(tmp_path / "bad.png", icc_profile=b"not a profile at all" * 8)
    assert main([str(tmp_path / "bad.png"), "-o", str(tmp_path / "o.png"), "--model", str(tiny_weights)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"colorize: warning: {tmp_path / 'bad.png'}: its colour profile cannot be read; sRGB assumed"]


# ---------------------------------------------------------------- 16 bits

def _read_png16(path: Path) -> tuple[np.ndarray, dict]:
    """A 16-bit RGB PNG as written here (one IDAT, filter 0), read without Pillow (which reads 8 bits)."""
    import zlib
    data, pos, chunks, idat = path.read_bytes(), 8, {}, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        chunks.setdefault(kind, []).append(body)
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    w, h, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][0][:10])
    assert (depth, colour) == (16, 2)
    rows = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(h, 1 + 6 * w)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].copy().view(">u2").reshape(h, w, 3).astype(np.uint16), chunks


def test_a_16_bit_scan_keeps_16_bits_and_its_luminance(tmp_path, tiny_weights):
    import torch

    from chromalift.color.lab import rgb_to_lab
    y, x = np.mgrid[0:40, 0:56]
    grey = (1000 + 60000 * (x / 55) * (0.3 + 0.7 * y / 39)).astype(np.uint16)     # fine steps, 16 bits
    src = tmp_path / "scan16.png"
    exif = Image.Exif()
    exif[0x010E] = "Harbour, 1931"
    Image.fromarray(grey).save(src, exif=exif.tobytes(), dpi=(1200, 1200))          # mode I;16
    assert main([str(src), "-o", str(tmp_path / "out.png"), "--model", str(tiny_weights)]) == 0
    rgb16, chunks = _read_png16(tmp_path / "out.png")
    lab = lambda a: rgb_to_lab(torch.from_numpy(a.astype(np.float64) / 65535).permute(2, 0, 1))
    out_lab, in_l = lab(rgb16), lab(np.repeat(grey[:, :, None], 3, axis=2))[0]
    assert float((out_lab[0] - in_l).abs().max()) < 0.02       # L within 16-bit rounding (8 bits: ~0.2)
    assert float(out_lab[1:].abs().mean()) > 1                  # and it has colour
    assert len(set(rgb16[..., 0].ravel().tolist())) > 1000      # more levels than 8 bits hold
    img = Image.open(tmp_path / "out.png")                      # Pillow still reads the metadata chunks
    assert img.getexif().get(0x010E) == "Harbour, 1931" and round(img.info["dpi"][0]) == 1200
    assert "Colours added by chromalift" in img.text["Comment"] and b"iCCP" in chunks
