"""Reading the photos users really have, and writing results without losing anything.

Every problem with a file becomes an `ImageError` whose message names the file and the problem, so
that the CLI can print one line per failure instead of a traceback.
"""
from __future__ import annotations

import contextlib
import io
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from chromalift.io.atomic import already_exists, atomic_write
from chromalift.io.metadata import Metadata, encode, read_metadata
from chromalift.io.sixteen_bit import icc_to_srgb, is_deep_colour_tiff, png_with_16_bit_pixels, read_deep_tiff, tiff_with_16_bit_pixels

# Photos above this many pixels are refused before they are decoded (a decompression bomb can claim
# gigabytes from a few kilobytes). 120 MP covers every camera of today; raise it with max_pixels.
MAX_PIXELS = 120_000_000
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm", ".jfif"}
ALPHA_FORMATS = {".png", ".webp", ".tif", ".tiff", ".gif"}
DEEP_FORMATS = {".png", ".tif", ".tiff"}   # written with 16 bits per channel when the input had them


class ImageError(Exception):
    """A file that cannot be read or written; str() is a one-line message naming the file."""


class NotAnImage(ImageError):
    """Bytes that no image decoder recognises (or nothing at all)."""


class EmptyFile(NotAnImage):
    """A file of zero bytes."""


class ImageTooLarge(ImageError):
    """An image above the pixel limit, refused before it is decoded."""


@dataclass
class Photo:
    pixels: np.ndarray         # (H, W, 3) upright: uint8 as decoded for 8-bit photos, float32 in [0, 1] for deeper
    alpha: np.ndarray | None   # (H, W) uint8 when the file had transparency, else None
    meta: Metadata | None = None   # EXIF, XMP, IPTC, DPI, text: kept in the output where its format holds it
    warnings: list[str] = field(default_factory=list)   # one line each, for the user (e.g. an unreadable profile)
    bits: int = 8              # 16 for 16-bit scans: their output keeps 16 bits where the format allows (PNG)

    @property
    def u8(self) -> np.ndarray:
        """(H, W, 3) uint8: `pixels` themselves for 8-bit photos (no conversion), rounded for deeper ones."""
        return self.pixels if self.pixels.dtype == np.uint8 else (self.pixels * 255.0 + 0.5).astype(np.uint8)

    @property
    def rgb(self) -> np.ndarray:
        """(H, W, 3) float32 in [0, 1], made on each call (Colorizer takes `pixels` as they are, faster)."""
        return self.pixels if self.pixels.dtype == np.float32 else self.pixels.astype(np.float32) / 255.0


def read_photo(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS) -> Photo:
    """Decode any photo Pillow reads: upright (EXIF), 16-bit precision kept, alpha split off."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image")
    if not path.is_file():   # a FIFO, a device (/dev/urandom): reading could block or never end
        raise ImageError(f"{path}: not a regular file (a pipe or a device), not an image")
    if path.stat().st_size == 0:
        raise EmptyFile(f"{path}: empty file")
    return decode_photo(path, name=str(path), max_pixels=max_pixels)


def decode_photo(source: str | os.PathLike | bytes, *, name: str, max_pixels: int = MAX_PIXELS,
                 max_side: int | None = None) -> Photo:
    """read_photo for a file or for bytes in memory (an upload); errors call it `name`. Both limits are
    checked on the header, before any pixel is decoded."""
    if isinstance(source, bytes):
        if not source:
            raise EmptyFile(f"{name}: empty file")
        source = io.BytesIO(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with _open_limited(source, max_pixels) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise ImageTooLarge(f"{name}: {w}x{h} is {w * h / 1e6:.0f} MP, above the limit of "
                                     f"{max_pixels / 1e6:.0f} MP (a possible decompression bomb; --max-pixels raises it)")
                if max_side and max(w, h) > max_side:
                    raise ImageTooLarge(f"{name}: {w}x{h} is too large; each side may be at most {max_side} pixels")
                if w == 0 or h == 0:
                    raise ImageError(f"{name}: image has no pixels ({w}x{h})")
                _check_tiles(img, name, max_pixels)
                if img.format == "JPEG" and (img.info.get("progressive") or img.info.get("progression")):
                    _check_scans(source, name)
                orientation = img.getexif().get(0x0112)   # before loading: Pillow's TIFF loader forgets it
                img.load()
                meta = read_metadata(img)
                photo, notes = _deep_tiff(img, source, name, orientation) if is_deep_colour_tiff(img) else (None, [])
                if photo is None:
                    kind = sample_kind(img)
                    img = ImageOps.exif_transpose(img)
                    img, more = to_srgb(img, name)
                    photo = _to_photo(img, name, kind)
                    notes += more
                photo.meta, photo.warnings = meta, notes + [f"{name}: {w}" for w in meta.warnings] + photo.warnings
                return photo
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise NotAnImage(f"{name}: not an image Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge(f"{name}: above the limit of {max_pixels / 1e6:.0f} MP (a possible decompression "
                         f"bomb; --max-pixels raises it)") from None
    except PermissionError:
        raise ImageError(f"{name}: permission denied") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{name}: corrupt or truncated image ({e})") from None


MAX_SCANS = 256   # a progressive JPEG has about 10; each scan is a pass over the whole photo (20,000 empty scans
                  # in a 200 KB file kept a decoder busy for 70 s)


def _check_scans(source, name: str) -> None:
    """Refuse a progressive JPEG with more than MAX_SCANS scans, counted on the file's bytes before decoding
    (0xFF 0xDA starts a scan; entropy-coded data never holds it, as its 0xFF bytes are stuffed)."""
    scans, tail = 0, b""
    with open(source, "rb") if not isinstance(source, io.BytesIO) else contextlib.nullcontext(source) as f:
        start = f.tell()
        f.seek(0)
        while chunk := f.read(1 << 20):
            scans += (tail + chunk).count(b"\xff\xda")
            tail = chunk[-1:]
            if scans > MAX_SCANS:
                raise ImageError(f"{name}: a progressive JPEG of more than {MAX_SCANS} scans (a hostile file); not decoded")
        f.seek(start)


def _check_tiles(img: Image.Image, name: str, max_pixels: int) -> None:
    """A TIFF's decoder allocates whole tiles, whatever the image's size: a 64x64 image with one 16384x16384
    tile costs 800 MB. Tiles are refused past max(4x the image, 1 MP) or the pixel limit."""
    tags = getattr(img, "tag_v2", None)
    if tags is None or 322 not in tags or 323 not in tags:
        return
    tw, th = (int(v[0] if isinstance(v, tuple) else v) for v in (tags[322], tags[323]))
    w, h = img.size
    if tw * th > min(max_pixels, max(4 * w * h, 2**20)):
        raise ImageTooLarge(f"{name}: its {tw}x{th} tiles are far larger than the {w}x{h} image "
                            "(a malformed or hostile TIFF); not decoded")


def to_srgb(img: Image.Image, name: str) -> tuple[Image.Image, list[str]]:
    """An image with an embedded ICC profile (Adobe RGB, ProPhoto, a grey gamma curve, CMYK...) converted
    to sRGB by LittleCMS (relative colorimetric), so that L is taken from the colours the file means.
    -> (image, warnings). A profile that cannot be read or applied: one warning, sRGB assumed."""
    icc = img.info.get("icc_profile")
    if not icc:
        return img, []
    from PIL import ImageCms

    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ImageCms.PyCMSError, TypeError, ValueError):
        return img, [f"{name}: its colour profile cannot be read; sRGB assumed"]
    if img.mode.startswith("I;16"):
        return img, []   # a 16-bit grey scan's profile is applied in float by _to_photo (LittleCMS here: 8 bits)
    alpha = img.getchannel("A") if img.mode in ("RGBA", "LA") else None
    base = {"RGBA": "RGB", "LA": "L"}.get(img.mode, img.mode)
    if base not in ("RGB", "L", "CMYK"):
        return img, [f"{name}: a colour profile on a {img.mode} image is not applied; sRGB assumed"]
    try:
        out = ImageCms.profileToProfile(img.convert(base) if base != img.mode else img, source, _srgb_profile(),
                                        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, outputMode="RGB")
    except ImageCms.PyCMSError as e:
        return img, [f"{name}: its colour profile cannot be applied ({e}); sRGB assumed"]
    if alpha is not None:
        out.putalpha(alpha)
    out.info = {k: v for k, v in img.info.items() if k != "icc_profile"}
    return out, []


_SRGB: list = []


def _srgb_profile():
    from PIL import ImageCms
    if not _SRGB:
        _SRGB.append(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")))
    return _SRGB[0]


def srgb_icc() -> bytes:
    """The sRGB profile's bytes, to tag outputs with. LittleCMS stamps the time of creation into the header
    (bytes 24-35); a fixed date there keeps the same photo's output the same byte for byte on every run."""
    data = bytearray(_srgb_profile().tobytes())
    if not any(data[84:100]):   # no profile ID (an MD5 that covers the date) to invalidate
        data[24:36] = bytes([0x07, 0xE6, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0])     # 2022-01-01 00:00:00
    return bytes(data)


_PILLOW_LIMIT = threading.Lock()


def _open_limited(source, max_pixels: int) -> Image.Image:
    """Image.open (headers only) with Pillow's own pixel limit set to ours, so that ours is the one limit:
    a flag can raise it past Pillow's default and lower it below, and the file is refused before decoding."""
    with _PILLOW_LIMIT:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, max_pixels
        try:
            return Image.open(source)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _deep_tiff(img: Image.Image, source, name: str, orientation: int | None) -> tuple[Photo | None, list[str]]:
    """A 48-bit colour TIFF at full precision (tifffile), its matrix/TRC profile applied in float;
    (None, [why]) where it has to be read at 8 bits instead."""
    try:
        rgb, alpha = read_deep_tiff(source, orientation)
    except ImportError:
        return None, [f"{name}: a 16-bit colour TIFF, read at 8 bits (pip install 'chromalift[tiff]' keeps 16)"]
    except (ValueError, OSError, RuntimeError, KeyError, NotImplementedError) as e:   # tifffile: a layout or codec it lacks
        return None, [f"{name}: its 16 bits could not be read ({e}); read at 8 bits"]
    icc = img.info.get("icc_profile")
    if icc:
        converted = icc_to_srgb(rgb, icc)
        if converted is None:
            return None, [f"{name}: its colour profile is not a matrix/TRC profile; read at 8 bits to apply it"]
        rgb = converted
    return Photo(rgb.astype(np.float32), alpha, bits=16), []


def sample_kind(img: Image.Image) -> str | None:
    """'uint32' or 'int32' for a TIFF of 32-bit integer samples (read from its tags, which a transposed copy
    no longer has), else None."""
    tags = getattr(img, "tag_v2", None) or {}
    bits, kind = tags.get(258, 0), tags.get(339, 1)
    bits, kind = (v[0] if isinstance(v, tuple) else v for v in (bits, kind))
    if img.mode != "I" or bits != 32:
        return None
    return "uint32" if kind == 1 else "int32"


def _grey_samples(img: Image.Image, kind: str | None) -> tuple[np.ndarray, float]:
    """A mode-I image's samples as floats, and the full scale of their type. Pillow reads 32-bit TIFF samples
    as signed; unsigned ones (SampleFormat 1, the default) are read back as unsigned here."""
    if kind == "uint32":
        return np.asarray(img, dtype=np.int32).view(np.uint32).astype(np.float64), 2.0**32 - 1
    if kind == "int32":
        return np.asarray(img, dtype=np.float64), 2.0**31 - 1
    return np.asarray(img, dtype=np.float32), 65535.0


def _to_photo(img: Image.Image, name: str = "photo", kind: str | None = None) -> Photo:
    alpha = None
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        alpha = np.asarray(img.getchannel("A"), dtype=np.uint8).copy()
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16- and 32-bit greyscale: keep the precision instead of truncating to 8 bits
        arr, full = _grey_samples(img, kind)
        top = arr.max(initial=0)
        scale = 255.0 if top <= 255 and not img.mode.startswith("I;16") else 65535.0 if top <= 65535 else full
        rgb = np.repeat(np.clip(arr / scale, 0.0, 1.0).astype(np.float32)[:, :, None], 3, axis=2)
        notes, icc = [], img.info.get("icc_profile")
        if icc:   # a grey gamma profile, applied in float so that the 16 bits survive
            converted = icc_to_srgb(rgb.astype(np.float64), icc)
            if converted is None:
                notes = [f"{name}: its colour profile cannot be applied to 16-bit grey; sRGB assumed"]
            else:
                rgb = converted.astype(np.float32)
        return Photo(rgb, alpha, bits=16 if scale > 255 else 8, warnings=notes)
    if img.mode == "F":
        grey = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
        return Photo(np.repeat(grey[:, :, None], 3, axis=2), alpha)
    return Photo(np.array(img.convert("RGB")), alpha)   # CMYK, YCbCr, L, 1, LA, RGBA ... as 8-bit RGB (writable)


JPEG_QUALITY = 95   # JPEG and WebP output quality (`--quality`): visually lossless for colour added to a scan
NOTE = "Colours added by chromalift (Iizuka et al. 2016 network)"


def write_photo(path: str | os.PathLike, rgb_u8: np.ndarray, alpha: np.ndarray | None = None, *,
                overwrite: bool = False, meta: Metadata | None = None, note: str = NOTE,
                quality: int = JPEG_QUALITY) -> None:
    """Write (H, W, 3) uint8 to `path`, format from its extension, alpha kept where the format has it,
    the input's metadata (`meta`) kept where the format holds it, and `note` saying who added the colours.

    Written to a temporary file and renamed, so a failure never leaves half a file; an existing file is
    only replaced with overwrite=True.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise ImageError(f"{path}: unknown output format {ext or '(no extension)'}; use one of "
                         f"{', '.join(sorted(IMAGE_EXTENSIONS))}")
    if path.exists() and not overwrite:
        raise ImageError(already_exists(path))
    deep = rgb_u8.dtype == np.uint16
    if deep and (ext not in DEEP_FORMATS or alpha is not None):   # 16 bits as RGB PNG or TIFF; elsewhere 8
        rgb_u8, deep = (rgb_u8.astype(np.float32) / 257.0 + 0.5).astype(np.uint8), False
    img = Image.fromarray((rgb_u8 >> 8).astype(np.uint8) if deep else rgb_u8, "RGB")
    if alpha is not None and ext in ALPHA_FORMATS:
        img.putalpha(Image.fromarray(alpha, "L"))
    fmt = Image.registered_extensions()[ext]
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    try:
        data = encode(img, fmt, meta, note, icc=srgb_icc(), **options)
        if deep:
            data = (png_with_16_bit_pixels if ext == ".png" else tiff_with_16_bit_pixels)(data, rgb_u8)
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    except ValueError as e:     # Pillow refuses what the format cannot hold (e.g. an EXIF block above 64 KB)
        raise ImageError(f"{path}: cannot write this photo's metadata as {fmt} ({e})") from None
    except OSError as e:
        raise ImageError(f"{path}: cannot write ({e.strerror or e})") from None


def find_images(folder: Path) -> list[Path]:
    """Image files under `folder`, recursively, in a stable order (hidden files skipped)."""
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))

