"""`colorize web`: a local page to colorize photos in the browser (install with `pip install .[web]`).

A small FastAPI app rather than Gradio: the page is one HTML file with no third-party scripts, nothing
is fetched from the internet (Gradio's front end calls home and pulls in ~100 MB of dependencies), and
the limits and error messages are the CLI's own. The model is loaded once; each request makes the same
library calls as `colorize` (decode_photo, Colorizer.prior, Colorizer.colorize), one at a time.

    GET  /                    the page
    GET  /api/info            limits and example photos, for the page
    GET  /examples/NAME       an example photo
    POST /api/colorize        multipart: photo, optional reference -> PNG of the photo's size (header
                              X-Scene-Classes: its 3 likeliest scene classes as JSON), or {"error": "..."}
                              with 400 (not an image), 413 (too large), 408 (too slow)
"""

import asyncio
import base64
import hashlib
import io
import json
import re
import threading
import time
from pathlib import Path

from PIL import Image

from .images import EmptyFile, ImageError, ImageTooLarge, NotAnImage, decode_photo
from .inference import DEFAULT_PROCESS_SIZE, Colorizer

PAGE = Path(__file__).parent / "assets" / "web.html"
EXAMPLES = Path(__file__).parent / "assets" / "examples"
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

    def colorize(self, photo: bytes, name: str, reference: bytes | None = None,
                 reference_name: str = "reference") -> tuple[bytes, list[tuple[str, float]]]:
        """Upload bytes -> (PNG bytes of the colorized photo, its 3 most likely scene classes).

        Decoding happens inside the one-at-a-time lock too, so memory is bounded by one photo (and its
        reference) at the pixel limit, however many uploads arrive at once."""
        self.check_size(len(photo), name)
        with self._lock:
            image = self.read(photo, name)
            ref = self.read(reference, reference_name) if reference else None
            prior = self.colorizer.prior(ref.rgb, scores=False)[0] if ref is not None else None
            rgb, logits = self.colorizer.colorize_and_classify(image.rgb, prior=prior, process_size=self.process_size)
        out = Image.fromarray(rgb, "RGB")
        if image.alpha is not None:
            out.putalpha(Image.fromarray(image.alpha, "L"))
        buf = io.BytesIO()
        out.save(buf, format="PNG")
        return buf.getvalue(), self.colorizer.top_classes(logits)


def create_app(service: Service):
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

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS | {"Content-Security-Policy": csp})
        return response

    @app.post("/api/colorize")
    async def colorize(request: Request):
        try:
            photo, name, ref, ref_name = await _read_upload(request, service)
            png, classes = await run_in_threadpool(service.colorize, photo, name, ref, ref_name)
        except UploadError as e:
            return error(str(e), e.status)
        scenes = json.dumps([{"class": c, "p": round(p, 4)} for c, p in classes])   # ASCII: a header
        return Response(png, media_type="image/png", headers={"X-Scene-Classes": scenes})

    return app


async def _read_upload(request, service: Service) -> tuple[bytes, str, bytes | None, str]:
    """The multipart upload -> (photo, its name, reference or None, its name), under the service's size
    limits (the whole body within BODY_TIMEOUT_S; each part checked before it is read into memory)."""
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException

    limit = 2 * service.max_bytes + 2**20          # photo and reference at most, and the form's own bytes
    body = await read_body(request, limit, BODY_TIMEOUT_S)
    try:
        form = await _replay(request, body).form(max_files=2, max_fields=4, max_part_size=service.max_bytes + 1)
    except MultiPartException as e:   # malformed multipart, or a part above max_part_size
        raise UploadError(f"upload refused: {e.message}", 413 if "size" in e.message.lower() else 400) from None
    photo, reference = form.get("photo"), form.get("reference")
    if not isinstance(photo, UploadFile):
        raise UploadError("no photo in the upload (send it as the form field 'photo')", 400)
    has_reference = isinstance(reference, UploadFile)
    for part in (photo, reference) if has_reference else (photo,):
        service.check_size(part.size or 0, part.filename or "photo")
    data = await photo.read()
    ref = await reference.read() if has_reference else None
    return data, photo.filename or "photo", ref, (reference.filename if ref else None) or "reference"


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
    import uvicorn

    print(f"colorize web: open http://{host}:{port}/ in a browser (Ctrl+C stops)", flush=True)
    uvicorn.run(create_app(service), host=host, port=port, log_level="warning")
