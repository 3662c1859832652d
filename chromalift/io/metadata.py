"""What a photo carries besides its pixels, kept through colorization where the output format holds it.

Read from the input before anything else: EXIF (dates, camera, caption, GPS; the orientation is reset
to upright on the way out, since the pixels are turned), XMP, IPTC, the resolution (DPI), PNG text
chunks and a JPEG comment. Written back by format:

    JPEG  EXIF, XMP, IPTC (APP13), DPI, comment           PNG   EXIF, XMP, DPI, text chunks
    TIFF  EXIF, XMP, IPTC, DPI                            WebP  EXIF, XMP
    BMP, GIF, PPM/PGM: none of it (the formats have no place for it)

Every output also says that its colours were added by this tool, and with which model: a JPEG
comment, a PNG text chunk "Comment", the TIFF Software tag where the input had none. The output's
pixels are sRGB; an input's ICC profile is not carried over.
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field

from PIL import ExifTags, Image, PngImagePlugin

ORIENTATION, SOFTWARE = 0x0112, 0x0131
PHOTOSHOP_IPTC = 0x0404          # the IPTC-NAA record inside a JPEG's Photoshop APP13 segment
TIFF_IPTC, TIFF_XMP = 33723, 700
# tags that describe a TIFF's pixel layout, not the photo: never carried into another file
LAYOUT_TAGS = {254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 280, 281, 284, 317, 320, 322, 323, 324,
               325, 338, 339, 340, 341, 530, 531, 532, 0x014A, TIFF_XMP, TIFF_IPTC, 34675}
SKIP_TEXT = {"XML:com.adobe.xmp", "exif", "icc_profile", "dpi"}   # PNG text keys carried another way


@dataclass
class Metadata:
    exif: bytes | None = None              # orientation already reset to 1
    xmp: bytes | None = None
    iptc: bytes | None = None
    dpi: tuple[float, float] | None = None
    text: dict[str, str] = field(default_factory=dict)   # PNG text chunks
    comment: bytes | None = None           # the input's own JPEG comment
    software: str | None = None            # the input's TIFF Software tag, if any
    warnings: list[str] = field(default_factory=list)   # what was left behind, one line each


MAX_EXIF = 65_000        # a JPEG's EXIF segment holds at most 65,533 bytes: more made every JPEG output fail
MAX_TEXT = 256 * 1024    # text chunks carried from a PNG, in all: 60 chunks of 1 MB (64 KB zipped) are an attack


IMAGE_DESCRIPTION = 270


def _describes_layout(text) -> bool:
    """An ImageDescription that describes the file's pages rather than the photo (tifffile's shaped JSON,
    ImageJ's hyperstack header): on a one-page output it would make readers expect pages that are not there."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    return isinstance(text, str) and (text.lstrip().startswith('{"shape"') or text.startswith("ImageJ="))


def read_metadata(img: Image.Image) -> Metadata:
    """Everything of the above that `img` (as opened, before any transpose) carries."""
    meta = Metadata()
    if len(img.getexif()):
        original = img.getexif()
        for ifd in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo):   # read the nested directories (a TIFF's lazily)
            original.get_ifd(ifd)
        exif = Image.Exif()                   # a copy: the image's own EXIF still turns it upright
        exif.load(original.tobytes())
        for tag in LAYOUT_TAGS & set(exif):   # XMP, IPTC and the ICC profile (34675) are carried on their own
            del exif[tag]
        if _describes_layout(exif.get(IMAGE_DESCRIPTION)):
            del exif[IMAGE_DESCRIPTION]
        meta.software = exif.get(SOFTWARE)
        if ORIENTATION in exif:
            exif[ORIENTATION] = 1
        meta.exif = exif.tobytes()
        if len(meta.exif) > MAX_EXIF:
            meta.warnings.append(f"its EXIF ({len(meta.exif) // 1024} KB) is more than a JPEG can hold: written without it")
            meta.exif = None
    xmp = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp")
    meta.xmp = xmp.encode() if isinstance(xmp, str) else xmp
    photoshop = img.info.get("photoshop")
    if isinstance(photoshop, dict) and PHOTOSHOP_IPTC in photoshop:
        meta.iptc = bytes(photoshop[PHOTOSHOP_IPTC])
    elif hasattr(img, "tag_v2") and TIFF_IPTC in img.tag_v2:
        value = img.tag_v2[TIFF_IPTC]
        meta.iptc = value if isinstance(value, bytes) else struct.pack(f">{len(value)}I", *value)
    dpi = img.info.get("dpi")
    if dpi and all(float(d) > 0 for d in dpi):
        meta.dpi = (float(dpi[0]), float(dpi[1]))
    meta.text, size = {}, 0
    for k, v in getattr(img, "text", {}).items():
        if isinstance(v, str) and k not in SKIP_TEXT:
            size += len(k) + len(v.encode())
            if size > MAX_TEXT:
                meta.warnings.append(f"its text chunks pass {MAX_TEXT // 1024} KB: '{k[:40]}' and any after it are not carried")
                break
            meta.text[k] = v
    comment = img.info.get("comment")
    meta.comment = comment if isinstance(comment, bytes) else None
    return meta


def save_options(meta: Metadata | None, fmt: str, note: str) -> dict:
    """Keyword arguments for Image.save in format `fmt` (Pillow's name) that carry `meta` and `note`."""
    meta = meta or Metadata()
    if fmt == "JPEG":
        comment = (meta.comment + b"\n" if meta.comment else b"") + note.encode()
        return _some(exif=meta.exif, xmp=meta.xmp, dpi=meta.dpi, comment=comment)
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        for key, value in meta.text.items():
            big = len(value) > 1024           # kept compressed, as such chunks usually came
            info.add_itxt(key, value, zip=big) if not value.isascii() else info.add_text(key, value, zip=big)
        if meta.xmp:
            info.add_itxt("XML:com.adobe.xmp", meta.xmp.decode("utf-8", "replace"))
        info.add_text("Comment" if "Comment" not in meta.text else "Colorized", note)
        return _some(pnginfo=info, exif=meta.exif, dpi=meta.dpi)
    if fmt == "TIFF":   # a TIFF's EXIF is its own tag directory: XMP, IPTC and the note go in beside it
        tags = Image.Exif()
        if meta.exif:
            tags.load(meta.exif)
        if meta.xmp:
            tags[TIFF_XMP] = meta.xmp
        if meta.iptc:
            tags[TIFF_IPTC] = meta.iptc
        if not meta.software:
            tags[SOFTWARE] = note
        return _some(exif=tags, dpi=meta.dpi)
    if fmt == "WEBP":
        return _some(exif=meta.exif, xmp=meta.xmp)
    return {}


def _some(**options) -> dict:
    return {k: v for k, v in options.items() if v is not None}


def with_iptc(jpeg: bytes, iptc: bytes | None) -> bytes:
    """A JPEG with an IPTC record added as a Photoshop APP13 segment right after SOI (Pillow writes none)."""
    if not iptc:
        return jpeg
    record = b"8BIM" + struct.pack(">H", PHOTOSHOP_IPTC) + b"\0\0" + struct.pack(">I", len(iptc)) + iptc
    record += b"\0" * (len(iptc) % 2)
    payload = b"Photoshop 3.0\0" + record
    if len(payload) + 2 > 0xFFFF:
        return jpeg                       # an IPTC block too large for one segment is left out
    return jpeg[:2] + b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def encode(img: Image.Image, fmt: str, meta: Metadata | None, note: str, *, icc: bytes | None = None,
           **options) -> bytes:
    """img encoded as `fmt` with its metadata, the note and the ICC profile `icc` (sRGB), as bytes."""
    buf = io.BytesIO()
    if icc is not None and fmt in ("JPEG", "PNG", "TIFF", "WEBP"):
        options["icc_profile"] = icc
    img.save(buf, format=fmt, **save_options(meta, fmt, note), **options)
    data = buf.getvalue()
    return with_iptc(data, meta.iptc) if fmt == "JPEG" and meta is not None else data
