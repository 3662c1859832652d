"""16-bit photos end to end: 48-bit colour TIFFs read at full precision, their ICC profiles applied in
floating point, and 16-bit PNG and TIFF written with every metadata chunk or tag Pillow writes.

Pillow reads a 16-bit-per-sample RGB TIFF as 8 bits and writes no 16-bit RGB at all, and LittleCMS
through Pillow converts 8-bit pixels only. So: the pixels of such a TIFF come from tifffile (the `tiff`
extra; without it they are read at 8 bits, with a warning), its matrix/TRC profile (Adobe RGB, ProPhoto,
a grey gamma: what scanners embed) is evaluated here in float64, and outputs are Pillow's own 8-bit
files, metadata and all, with their pixels replaced by 16-bit ones.
"""
from __future__ import annotations

import io
import itertools
import struct
import zlib

import numpy as np

# the sRGB profile's D50-adapted primaries (ICC PCS), as LittleCMS builds them: linear sRGB -> XYZ(D50)
SRGB_TO_XYZ_D50 = np.array([[0.4360747, 0.3850649, 0.1430804],
                            [0.2225045, 0.7168786, 0.0606169],
                            [0.0139322, 0.0971045, 0.7141733]])
# Image.transpose methods of ImageOps.exif_transpose, by EXIF orientation, as array operations
_ORIENT = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1], 5: lambda a: a.swapaxes(0, 1),
           6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1), 8: lambda a: np.rot90(a, 1)}


def is_deep_colour_tiff(img) -> bool:
    """A TIFF with 16 bits per sample and 3 or 4 samples (RGB, RGBA), which Pillow decodes to 8 bits."""
    tags = getattr(img, "tag_v2", None)
    if img.format != "TIFF" or tags is None:
        return False
    bits = tags.get(258, (8,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    return tags.get(277, 1) in (3, 4) and all(b == 16 for b in bits) and tags.get(262) == 2


def read_deep_tiff(source, orientation: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """-> ((H, W, 3) float64 in [0, 1], upright; (H, W) uint8 alpha or None). ImportError without tifffile."""
    import tifffile

    if isinstance(source, io.BytesIO):
        source.seek(0)
    with tifffile.TiffFile(source) as tif:
        page = tif.pages[0]
        a = page.asarray()
        if page.planarconfig == 2 and a.ndim == 3 and a.shape[0] in (3, 4):   # separate planes: (S, H, W)
            a = np.moveaxis(a, 0, -1)
    if a.ndim != 3 or a.shape[-1] not in (3, 4) or a.dtype != np.uint16:
        raise ValueError(f"unexpected 16-bit TIFF layout {a.shape} {a.dtype}")
    a = _ORIENT.get(orientation or 1, lambda x: x)(a)
    alpha = (a[..., 3] >> 8).astype(np.uint8) if a.shape[-1] == 4 else None
    return np.ascontiguousarray(a[..., :3], dtype=np.float64) / 65535.0, alpha


# ---------------------------------------------------------------- ICC matrix/TRC profiles in float

def _tags(icc: bytes) -> dict[bytes, bytes]:
    (count,) = struct.unpack(">I", icc[128:132])
    out = {}
    for i in range(count):
        sig, offset, size = struct.unpack(">4sII", icc[132 + 12 * i:144 + 12 * i])
        out[sig] = icc[offset:offset + size]
    return out


def _s15(data: bytes, n: int, at: int = 0) -> np.ndarray:
    return np.array(struct.unpack(f">{n}i", data[at:at + 4 * n])) / 65536.0


def _curve(data: bytes):
    """A TRC tag ('curv' gamma or table, or 'para' parametric) -> a function of an array in [0, 1]."""
    kind = data[:4]
    if kind == b"curv":
        (n,) = struct.unpack(">I", data[8:12])
        if n == 0:
            return lambda x: x
        if n == 1:
            gamma = struct.unpack(">H", data[12:14])[0] / 256.0
            return lambda x: np.power(x, gamma)
        table = np.array(struct.unpack(f">{n}H", data[12:12 + 2 * n])) / 65535.0
        return lambda x: np.interp(x, np.linspace(0.0, 1.0, n), table)
    if kind == b"para":
        (fn,) = struct.unpack(">H", data[8:10])
        count = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}[fn]
        p = list(_s15(data, count, 12)) + [0.0] * (7 - count)
        g, a, b, c, d, e, f = p if fn else (p[0], 1.0, 0.0, 0.0, -1.0, 0.0, 0.0)
        if fn == 1:
            d, c = -b / a, 0.0
        elif fn == 2:
            d, e, f = -b / a, c, c
            c = 0.0
        return lambda x: np.where(x >= d, np.power(np.maximum(a * x + b, 0.0), g) + e, c * x + f)
    raise ValueError(f"TRC of type {kind!r}")


def icc_to_srgb(rgb: np.ndarray, icc: bytes) -> np.ndarray | None:
    """(H, W, 3) float in [0, 1] in the profile's space -> the same in sRGB (relative colorimetric,
    clipped as LittleCMS clips), for matrix/TRC RGB and grey-TRC profiles; None for any other profile."""
    try:
        space, tags = icc[16:20], _tags(icc)
        if space == b"GRAY" and b"kTRC" in tags:
            y = _curve(tags[b"kTRC"])(np.clip(rgb[..., 1], 0.0, 1.0))             # the grey axis: Y = L's Y
            return _srgb_encode(np.repeat(y[..., None], 3, axis=-1))
        if space != b"RGB " or not all(t in tags for t in (b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC")):
            return None
        to_xyz = np.stack([_s15(tags[t], 3, 8) for t in (b"rXYZ", b"gXYZ", b"bXYZ")], axis=1)   # columns
        linear = np.stack([_curve(tags[t])(np.clip(rgb[..., i], 0.0, 1.0))
                           for i, t in enumerate((b"rTRC", b"gTRC", b"bTRC"))], axis=-1)
        to_srgb = np.linalg.solve(SRGB_TO_XYZ_D50, to_xyz)                          # profile -> linear sRGB
        return _srgb_encode(np.clip(linear @ to_srgb.T, 0.0, 1.0))
    except (struct.error, ValueError, KeyError, ZeroDivisionError, np.linalg.LinAlgError):
        return None


def _srgb_encode(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear > 0.0031308, 1.055 * np.power(linear, 1 / 2.4) - 0.055, 12.92 * linear)


# ---------------------------------------------------------------- writing 16 bits

def png_with_16_bit_pixels(png: bytes, rgb16: np.ndarray) -> bytes:
    """Pillow's 8-bit RGB PNG (with all its metadata chunks) with its pixels replaced by 16-bit ones:
    a new IHDR (bit depth 16) and one IDAT of the (H, W, 3) uint16 pixels; every other chunk kept."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w = rgb16.shape[:2]
    rows = np.empty((h, 1 + w * 6), dtype=np.uint8)
    rows[:, 0] = 0                                                     # filter: none
    rows[:, 1:] = rgb16.astype(">u2").reshape(h, w * 3).view(np.uint8)
    pixels = chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
    out, pos, wrote = [png[:8]], 8, False
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        whole = png[pos:pos + 12 + length]
        pos += 12 + length
        if kind == b"IHDR":
            out.append(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)))
        elif kind == b"IDAT":
            if not wrote:
                out.append(pixels)
                wrote = True
        else:
            out.append(whole)
    return b"".join(out)


def tiff_with_16_bit_pixels(tiff: bytes, rgb16: np.ndarray) -> bytes:
    """Pillow's uncompressed 8-bit RGB TIFF (its tags, EXIF directory, XMP, IPTC and ICC profile stored
    before the pixels) with the pixels replaced by 16-bit ones: BitsPerSample set to 16 and the strips,
    as many and as tall as before, twice as long, written where the old ones began."""
    order = "<" if tiff[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    (n,) = struct.unpack(order + "H", tiff[ifd:ifd + 2])
    entries = {}
    for i in range(n):
        at = ifd + 2 + 12 * i
        tag, kind, count = struct.unpack(order + "HHI", tiff[at:at + 8])
        entries[tag] = (kind, count, at + 8)
    codes = {3: "H", 4: "I"}   # SHORT, LONG
    out = bytearray(tiff)

    def where(tag) -> tuple[str, int]:   # (the struct format of the tag's values, their byte position)
        kind, count, at = entries[tag]
        fmt = order + codes[kind] * count
        return fmt, at if struct.calcsize(fmt) <= 4 else struct.unpack_from(order + "I", tiff, at)[0]

    def values(tag) -> list[int]:
        fmt, at = where(tag)
        return list(struct.unpack_from(fmt, tiff, at))

    if values(259) != [1] or values(277) != [3] or values(258) != [8, 8, 8]:
        raise ValueError("expected an uncompressed 8-bit RGB TIFF")
    h, w = rgb16.shape[:2]
    offsets, counts, rows = values(273), values(279), values(278)[0]
    start = min(offsets)
    if start + sum(counts) != len(tiff):
        raise ValueError("the TIFF's pixels are not at its end")
    new_counts = [min(rows, h - i * rows) * w * 6 for i in range(len(offsets))]
    new_offsets = list(itertools.accumulate(new_counts[:-1], initial=start))
    for tag, new in ((273, new_offsets), (279, new_counts), (258, [16, 16, 16])):
        fmt, at = where(tag)
        if fmt.endswith("H") and max(new) > 0xFFFF:
            raise ValueError("strip sizes too large for the TIFF's SHORT fields")
        struct.pack_into(fmt, out, at, *new)
    pixels = rgb16.astype(order + "u2").tobytes()
    return bytes(out[:start]) + pixels
