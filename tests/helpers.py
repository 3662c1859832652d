"""What several test files share: photos made on the fly, the data folders, the browser, archive metadata
and ICC profiles built by hand. Imported as `from helpers import ...` (tests/ is on the path)."""
from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


KODAK = SHARED / "kodak24"


MINIPLACES = SHARED / "miniplaces"


def gradient_rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth colour test image with some texture, (h, w, 3) uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x / max(w - 1, 1), y / max(h - 1, 1), 0.5 + 0.5 * np.sin(x / 7.0 + y / 5.0)], axis=-1)
    img = img * 200 + rng.integers(0, 40, size=(h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"]


def make_photo_folder(root: Path, classes=("beach", "forest"), per_class=12, size=48) -> Path:
    """Photos whose colour depends on their class, so that colour and class can both be learned."""
    rng = np.random.default_rng(0)
    tints = {"beach": (1.0, 0.85, 0.5), "forest": (0.4, 0.9, 0.4), "sky": (0.5, 0.7, 1.0)}
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            base = gradient_rgb(size, size, seed=int(rng.integers(1000))).astype(np.float32)
            img = np.clip(base * np.array(tints[c]), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / c / f"{i:03d}.jpg", quality=95)
    return root


XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/>album 7, page 3</x:xmpmeta>'


IPTC = b"\x1c\x02\x78" + struct.pack(">H", 20) + b"Grandmother, 1950 ok"      # 2:120 caption


def exif_sample() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6                                           # shown turned: the output is upright
    exif[0x010E] = "Wedding at Kinross"                        # ImageDescription: the caption
    exif[0x010F] = "Leica"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "1950:07:04 12:00:00"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", (56.0, 12.0, 30.0)
    return exif


def check_exif(img: Image.Image) -> None:
    exif = img.getexif()
    assert exif.get(0x0112, 1) == 1 and exif.get(0x010E) == "Wedding at Kinross" and exif.get(0x010F) == "Leica"
    assert exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] == "1950:07:04 12:00:00"
    assert exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitude] == (56.0, 12.0, 30.0)


def _s15(x: float) -> bytes:
    return struct.pack(">i", round(x * 65536))


def icc_profile(space: str, gamma: float, primaries=None) -> bytes:
    """A minimal ICC v2 display profile: a gamma curve and, for RGB, the D50-adapted primaries."""
    def tag(data: bytes) -> bytes:
        return data + b"\0" * (-len(data) % 4)
    xyz = lambda v: tag(b"XYZ \0\0\0\0" + b"".join(_s15(c) for c in v))
    curve = tag(b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)))
    text = b"test profile"
    desc = tag(b"desc\0\0\0\0" + struct.pack(">I", len(text) + 1) + text + b"\0" + b"\0" * 8 + b"\0\0\0" + b"\0" * 67)
    tags = {b"desc": desc, b"wtpt": xyz((0.9642, 1.0, 0.8249)), b"cprt": tag(b"text\0\0\0\0public domain\0")}
    if space == "RGB ":
        for k, v in zip((b"rXYZ", b"gXYZ", b"bXYZ"), primaries):
            tags[k] = xyz(v)
        tags |= {b"rTRC": curve, b"gTRC": curve, b"bTRC": curve}
    else:
        tags[b"kTRC"] = curve
    offset, table, body = 128 + 4 + 12 * len(tags), b"", b""
    for sig, data in tags.items():
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = 128 + 4 + len(table) + len(body)
    header = (struct.pack(">I", size) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"mntr" + space.encode()
              + b"XYZ " + b"\0" * 12 + b"acsp" + b"\0" * 24 + struct.pack(">I", 0) + _s15(0.9642) + _s15(1.0)
              + _s15(0.8249) + b"\0" * 48)
    return header + struct.pack(">I", len(tags)) + table + body


ADOBE_RGB = [(0.60974, 0.31111, 0.01947), (0.20528, 0.62567, 0.06087), (0.14919, 0.06322, 0.74457)]
