"""`colorize web`: a local page to colorize photos in the browser (install with `pip install .[web]`).

A small FastAPI app rather than Gradio: the page is one HTML file with no third-party scripts, nothing
is fetched from the internet (Gradio's front end calls home and pulls in ~100 MB of dependencies), and
the limits and error messages are the CLI's own. The model is loaded once; each request makes the same
library calls as `colorize` (decode_photo, Colorizer.prior, Colorizer.colorize), one at a time.

    GET  /                    the page
    GET  /api/info            limits and example photos, for the page
    GET  /examples/NAME       an example photo
    POST /api/colorize        multipart: photo, optional reference -> PNG of the photo's size, or
                              {"error": "..."} with 400 (not an image), 413 (too large)
"""

import io
import threading
from pathlib import Path

from PIL import Image

from .images import ImageError, decode_photo
from .inference import DEFAULT_PROCESS_SIZE, Colorizer

PAGE = Path(__file__).parent / "assets" / "web.html"
EXAMPLES = Path(__file__).parent / "assets" / "examples"
MAX_UPLOAD_MB = 25.0
MAX_PIXELS = 50_000_000   # each side also at most MAX_SIDE
MAX_SIDE = 12_000


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
        self.check_size(len(data), name)
        try:
            photo = decode_photo(data, name=name, max_pixels=self.max_pixels)
        except ImageError as e:
            message = str(e)
            if "not an image" in message:
                message = f"{name}: not an image (use a JPEG, PNG, TIFF, WebP, BMP or GIF photo)"
            raise UploadError(message, 413 if "above the limit" in message else 400) from None
        h, w = photo.rgb.shape[:2]
        if max(h, w) > self.max_side:
            raise UploadError(f"{name}: {w}x{h} is too large; each side may be at most {self.max_side} pixels", 413)
        return photo

    def colorize_png(self, photo: bytes, name: str, reference: bytes | None = None,
                     reference_name: str = "reference") -> bytes:
        """Upload bytes -> PNG bytes of the colorized photo (same size, transparency kept)."""
        image = self.read(photo, name)
        ref = self.read(reference, reference_name) if reference else None
        with self._lock:
            prior = self.colorizer.prior(ref.rgb)[0] if ref is not None else None
            rgb = self.colorizer.colorize(image.rgb, prior=prior, process_size=self.process_size)
        out = Image.fromarray(rgb, "RGB")
        if image.alpha is not None:
            out.putalpha(Image.fromarray(image.alpha, "L"))
        buf = io.BytesIO()
        out.save(buf, format="PNG")
        return buf.getvalue()


def create_app(service: Service):
    from fastapi import FastAPI, Request
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import UploadFile

    app = FastAPI(title="colorize", docs_url=None, redoc_url=None, openapi_url=None)
    page = PAGE.read_text()

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

    @app.post("/api/colorize")
    async def colorize(request: Request):
        size = int(request.headers.get("content-length") or 0)
        if size > 2 * service.max_bytes + 2**20:    # refuse before reading: photo and reference at most
            return error(f"upload of {size / 2**20:.1f} MB is above the limit of "
                         f"{service.max_bytes / 2**20:.0f} MB per photo", 413)
        try:
            form = await request.form(max_files=2, max_fields=4, max_part_size=service.max_bytes + 1)
        except Exception as e:   # malformed multipart, or a part above max_part_size
            return error(f"upload refused: {e}", 413 if "size" in str(e).lower() else 400)
        photo, reference = form.get("photo"), form.get("reference")
        if not isinstance(photo, UploadFile):
            return error("no photo in the upload (send it as the form field 'photo')", 400)
        try:
            for part in (photo, reference):   # before reading a spooled part into memory
                if isinstance(part, UploadFile):
                    service.check_size(part.size or 0, part.filename or "photo")
            data = await photo.read()
            ref = await reference.read() if isinstance(reference, UploadFile) else None
            png = await run_in_threadpool(service.colorize_png, data, photo.filename or "photo", ref,
                                          (reference.filename if ref else None) or "reference")
        except UploadError as e:
            return error(str(e), e.status)
        return Response(png, media_type="image/png")

    return app


def serve(service: Service, host: str = "127.0.0.1", port: int = 7860) -> None:
    import uvicorn

    print(f"colorize web: open http://{host}:{port}/ in a browser (Ctrl+C stops)", flush=True)
    uvicorn.run(create_app(service), host=host, port=port, log_level="warning")
