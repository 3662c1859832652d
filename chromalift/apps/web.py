"""`colorize web`: a local page to colorize photos in the browser (install with `pip install .[web]`).

A small FastAPI app rather than Gradio: the page is one HTML file with no third-party scripts, nothing
is fetched from the internet (Gradio's front end calls home and pulls in ~100 MB of dependencies), and
the limits and error messages are the CLI's own. The model is loaded once; each request makes the same
library calls as `colorize` (decode_photo, Colorizer.prior, Colorizer.colorize), one at a time.

    GET  /                    the page
    GET  /api/info            limits and example photos, for the page
    GET  /examples/NAME       an example photo
    POST /api/colorize        multipart: photo, optional reference, optional colour hints (hints: JSON
                              {"points": [[x, y, "#rrggbb"], ...]} in the photo's pixels; strokes: an RGBA
                              PNG of the photo's size), optional format (png, the default, or jpeg) -> the
                              colorized photo at its size (header X-Scene-Classes: its 3 likeliest scene
                              classes as JSON), or {"error": "..."} with 400 (not an image, bad hints),
                              413 (too large), 408 (too slow)

The last photo's analysis (its L and the network's colours) is kept, so the same photo sent again with
other hints is only re-rendered: the hint solve and the colours at full size, not the network.
"""

import asyncio
import base64
import hashlib
import io
import json
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from chromalift.inference.colorizer import DEFAULT_PROCESS_SIZE, Colorizer
from chromalift.inference.hints import HintError, Hints, parse_point
from chromalift.io.photos import EmptyFile, ImageError, ImageTooLarge, NotAnImage, decode_photo

PAGE = Path(__file__).parents[1] / "assets" / "web.html"
EXAMPLES = Path(__file__).parents[1] / "assets" / "examples"
MAX_UPLOAD_MB = 25.0
MAX_PIXELS = 50_000_000   # each side also at most MAX_SIDE
MAX_SIDE = 12_000
BODY_TIMEOUT_S = 60.0     # a whole upload must arrive within this; a stalled one is cut off


class UploadError(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def examples(folder: Path = EXAMPLES) -> list[dict]:
    """The example photos: grey ones to colorize, colour ones (ref-*) to use as references."""
    return [{"name": p.name, "url": f"/examples/{p.name}", "reference": p.name.startswith("ref-")}
            for p in sorted(folder.glob("*")) if p.suffix.lower() in (".jpg", ".jpeg", ".png")]


class Service:
    """The model and the limits behind the page; usable without a web server (and tested so)."""

    def __init__(self, colorizer: Colorizer, *, max_upload_mb: float = MAX_UPLOAD_MB,
                 max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE,
                 process_size: int | None = DEFAULT_PROCESS_SIZE):
        self.colorizer = colorizer
        self.max_bytes = int(max_upload_mb * 1024 * 1024)
        self.max_pixels, self.max_side, self.process_size = max_pixels, max_side, process_size
        self._lock = threading.Lock()   # one photo at a time: each already uses every core
        self._last = None               # (key of the upload, its alpha, its Analysis): the last photo, for hints

    def check_size(self, size: int, name: str) -> None:
        if size > self.max_bytes:
            raise UploadError(f"{name}: {size / 2**20:.1f} MB is above the upload limit of "
                              f"{self.max_bytes / 2**20:.0f} MB", 413)

    def read(self, data: bytes, name: str):
        """Decode an upload under the pixel and side limits (checked on its header, before decoding)."""
        self.check_size(len(data), name)
        try:
            return decode_photo(data, name=name, max_pixels=self.max_pixels, max_side=self.max_side)
        except NotAnImage as e:
            message = str(e) if isinstance(e, EmptyFile) else \
                f"{name}: not an image (use a JPEG, PNG, TIFF, WebP, BMP or GIF photo)"
            raise UploadError(message, 400) from None
        except ImageTooLarge as e:
            raise UploadError(str(e), 413) from None
        except ImageError as e:
            raise UploadError(str(e), 400) from None

    def colorize_png(self, photo: bytes, name: str, reference: bytes | None = None,
                     reference_name: str = "reference") -> bytes:
        """Upload bytes -> PNG bytes of the colorized photo (same size, transparency kept)."""
        return self.colorize(photo, name, reference, reference_name)[0]

    def colorize(self, photo: bytes, name: str, reference: bytes | None = None, reference_name: str = "reference",
                 *, hints: Hints | None = None, fmt: str = "png") -> tuple[bytes, list[tuple[str, float]]]:
        """Upload bytes -> (the colorized photo encoded as `fmt`, png or jpeg; its 3 likeliest scene classes).

        Decoding happens inside the one-at-a-time lock too, so memory is bounded by one photo (and its
        reference) at the pixel limit, however many uploads arrive at once; the one analysis kept is of
        the same bound."""
        self.check_size(len(photo), name)
        with self._lock:
            key = hashlib.sha256(photo + b"\0" + (reference or b"")).digest()
            if self._last is None or self._last[0] != key:
                self._last = None                        # the old analysis goes before the new one is made
                image = self.read(photo, name)
                ref = self.read(reference, reference_name) if reference else None
                prior = self.colorizer.prior(ref.pixels, scores=False)[0] if ref is not None else None
                analysis = self.colorizer.analyse(image.pixels, prior=prior, process_size=self.process_size)
                self._last = (key, image.alpha, analysis)
            _, alpha, analysis = self._last
            try:
                rgb = self.colorizer.render(analysis, hints=hints)
            except HintError as e:
                raise UploadError(f"{name}: {e}", 400) from None
        out = Image.fromarray(rgb, "RGB")
        if alpha is not None and fmt == "png":
            out.putalpha(Image.fromarray(alpha, "L"))
        buf = io.BytesIO()
        if fmt == "jpeg":
            out.save(buf, format="JPEG", quality=95, subsampling=0)
        else:
            out.save(buf, format="PNG", compress_level=1)   # a fast level: the page waits for it (docs/speed.md)
        return buf.getvalue(), self.colorizer.top_classes(analysis.logits)

    def hints(self, points_json: str | None, strokes: bytes | None) -> Hints | None:
        """The page's hints: points as JSON, strokes as an RGBA image; UploadError for malformed ones."""
        points = parse_points_json(points_json) if points_json else ()
        stroke_image = None
        if strokes:
            image = self.read(strokes, "strokes")
            if image.alpha is None:
                raise UploadError("strokes: the stroke image has no transparency", 400)
            stroke_image = np.dstack([image.u8, image.alpha])
        return Hints(points, stroke_image) if points or stroke_image is not None else None


MAX_POINTS = 2000


def parse_points_json(text: str) -> tuple:
    """'{"points": [[x, y, "#rrggbb"], ...]}' -> Hints.points; UploadError naming what is malformed."""
    try:
        data = json.loads(text)
        points = data["points"] if isinstance(data, dict) else None
        if not isinstance(points, list) or len(points) > MAX_POINTS:
            raise ValueError
        return tuple(parse_point(f"{float(x)!r},{float(y)!r},{colour}") for x, y, colour in points)
    except (ValueError, TypeError, KeyError, RecursionError, HintError):
        raise UploadError(f'hints: expected {{"points": [[x, y, "#rrggbb"], ...]}} with at most {MAX_POINTS} '
                          "points, in the photo's pixels", 400) from None


def create_app(service: Service, host: str = "127.0.0.1"):
    from fastapi import FastAPI, Request
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
    from starlette.concurrency import run_in_threadpool

    app = FastAPI(title="colorize", docs_url=None, redoc_url=None, openapi_url=None)
    page = PAGE.read_text()
    csp = content_security_policy(page)

    def error(message: str, status: int):
        return JSONResponse({"error": message}, status_code=status)

    @app.get("/", response_class=HTMLResponse)
    def index():
        return page

    @app.get("/api/info")
    def info():
        return {"max_upload_mb": service.max_bytes / 2**20, "max_pixels": service.max_pixels,
                "max_side": service.max_side, "examples": examples()}

    @app.get("/examples/{name}")
    def example(name: str):
        known = {e["name"] for e in examples()}
        if name not in known:
            return error(f"{name}: no such example", 404)
        return FileResponse(EXAMPLES / name)

    guard_origin(app, host)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS | {"Content-Security-Policy": csp})
        return response

    @app.post("/api/colorize")
    async def colorize(request: Request):
        try:
            up = await _read_upload(request, service)
            hints = await run_in_threadpool(service.hints, up.hints, up.strokes)
            encoded, classes = await run_in_threadpool(service.colorize, up.photo, up.name, up.reference,
                                                       up.reference_name, hints=hints, fmt=up.fmt)
        except UploadError as e:
            return error(str(e), e.status)
        scenes = json.dumps([{"class": c, "p": round(p, 4)} for c, p in classes])   # ASCII: a header
        return Response(encoded, media_type=f"image/{up.fmt}", headers={"X-Scene-Classes": scenes})

    return app


@dataclass
class _Upload:
    photo: bytes
    name: str
    reference: bytes | None
    reference_name: str
    hints: str | None          # the points, as JSON
    strokes: bytes | None      # the stroke image
    fmt: str                   # png or jpeg


async def _read_upload(request, service: Service) -> _Upload:
    """The multipart upload, under the service's size limits (the whole body within BODY_TIMEOUT_S;
    each part checked before it is read into memory)."""
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException

    limit = 3 * service.max_bytes + 2**20          # photo, reference and strokes at most, and the form's own bytes
    body = await read_body(request, limit, BODY_TIMEOUT_S)
    try:
        form = await _replay(request, body).form(max_files=3, max_fields=6, max_part_size=service.max_bytes + 1)
    except MultiPartException as e:   # malformed multipart, or a part above max_part_size
        raise UploadError(f"upload refused: {e.message}", 413 if "size" in e.message.lower() else 400) from None
    photo, reference, strokes = (form.get(k) for k in ("photo", "reference", "strokes"))
    if not isinstance(photo, UploadFile):
        raise UploadError("no photo in the upload (send it as the form field 'photo')", 400)
    files = [f for f in (photo, reference, strokes) if isinstance(f, UploadFile)]
    for part in files:
        service.check_size(part.size or 0, part.filename or "photo")
    fmt, hints = form.get("format") or "png", form.get("hints")
    if fmt not in ("png", "jpeg") or not isinstance(hints, (str, type(None))):
        raise UploadError("format: png or jpeg; hints: JSON text", 400)
    read = lambda f: f.read() if isinstance(f, UploadFile) else None
    ref = await read(reference) if isinstance(reference, UploadFile) else None
    stroke_bytes = await read(strokes) if isinstance(strokes, UploadFile) else None
    return _Upload(await photo.read(), photo.filename or "photo", ref,
                   (reference.filename if ref else None) or "reference", hints, stroke_bytes, fmt)


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _hostname(netloc: str) -> str:
    """'127.0.0.1:7860' -> '127.0.0.1', '[::1]:7860' -> '::1'."""
    if netloc.startswith("["):
        return netloc[1:].split("]", 1)[0]
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


def guard_origin(app, host: str) -> None:
    """Refuse what another web site could make a visitor's browser send: a request whose Host is not this
    server's name (DNS rebinding: evil.example resolving to 127.0.0.1) unless it listens on every address,
    and a POST from another origin (a cross-site form or fetch). 403 with one line."""
    from fastapi.responses import JSONResponse
    names = None if host in ("0.0.0.0", "::", "") else LOOPBACK | {host.strip("[]").lower()}

    @app.middleware("http")
    async def same_origin(request, call_next):
        netloc = request.headers.get("host")
        if names is not None and netloc is not None and _hostname(netloc.lower()) not in names:
            return JSONResponse({"error": f"host {netloc[:80]!r} is not this server's name; refused"}, status_code=403)
        origin = request.headers.get("origin")
        foreign = origin is not None and (netloc is None or origin.lower().split("://", 1)[-1] != netloc.lower())
        if request.method == "POST" and foreign:
            return JSONResponse({"error": "a request from another web site; refused"}, status_code=403)
        return await call_next(request)


SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                    "Referrer-Policy": "no-referrer", "Cross-Origin-Opener-Policy": "same-origin"}


def content_security_policy(page: str) -> str:
    """Only this page's own inline script and style (by hash), images from here or the page's blobs,
    requests to this server only, and no framing by other sites."""
    digest = lambda text: "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"
    scripts = " ".join(digest(m) for m in re.findall(r"<script>(.*?)</script>", page, re.S))
    styles = " ".join(digest(m) for m in re.findall(r"<style>(.*?)</style>", page, re.S))
    return (f"default-src 'none'; script-src {scripts}; style-src {styles}; img-src 'self' blob: data:; "
            "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'")


async def read_body(request, limit: int, timeout: float) -> bytes:
    """The request body, refused as soon as it passes `limit` bytes (with or without Content-Length) or
    takes longer than `timeout` seconds to arrive."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise UploadError(f"upload of {int(declared) / 2**20:.1f} MB is above the limit of "
                          f"{limit / 2**20:.0f} MB", 413)
    chunks, size, deadline = [], 0, time.monotonic() + timeout
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), max(deadline - time.monotonic(), 0.001))
        except StopAsyncIteration:
            return b"".join(chunks)
        except asyncio.TimeoutError:
            raise UploadError(f"upload took longer than {timeout:.0f} s; refused", 408) from None
        size += len(chunk)
        if size > limit:
            raise UploadError(f"upload is above the limit of {limit / 2**20:.0f} MB", 413)
        chunks.append(chunk)


def _replay(request, body: bytes):
    """A Request whose body is `body` (already read and bounded), for Starlette's form parser."""
    from starlette.requests import Request

    sent = False

    async def receive():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, receive)


def serve(service: Service, host: str = "127.0.0.1", port: int = 7860) -> None:
    from chromalift.apps.server import run

    print(f"colorize web: open http://{host}:{port}/ in a browser (Ctrl+C stops)", flush=True)
    run(create_app(service, host), host, port)
