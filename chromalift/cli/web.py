"""`colorize web`: the local web page (apps/web.py) on a port of this computer."""
from __future__ import annotations

import argparse

from chromalift.cli.common import fail, listen, missing_extra, number


def cmd_web(argv: list[str]) -> int:
    from chromalift.apps.web import MAX_PIXELS, MAX_UPLOAD_MB, Service, serve
    from chromalift.inference.geometry import DEFAULT_PROCESS_SIZE
    from chromalift.inference.load import load_colorizer

    p = argparse.ArgumentParser(prog="colorize web", description="A local web page to colorize photos, with "
                                "before/after comparison, download, reference photos and examples.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this computer only)")
    p.add_argument("--port", type=number(int, 0, 65535), default=7860)
    p.add_argument("--model", help="weights (.safetensors); default: the shipped model")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--max-upload-mb", type=number(float, 0.001, 4096), default=MAX_UPLOAD_MB, help="largest photo file accepted")
    p.add_argument("--max-pixels", type=number(float, 1, 1e10), default=MAX_PIXELS, help="largest photo accepted, in pixels")
    p.add_argument("--process-size", type=number(int, 0, 16384), default=DEFAULT_PROCESS_SIZE, help="as for colorize")
    args = p.parse_args(argv)
    if message := missing_extra("colorize web", "web", "fastapi", "multipart", "uvicorn"):
        return fail(message)
    try:
        colorizer = load_colorizer(args.model, device=args.device, hints=True)
    except (ValueError) as e:
        return fail(str(e))
    service = Service(colorizer, max_upload_mb=args.max_upload_mb, max_pixels=int(args.max_pixels),
                      process_size=args.process_size or None)
    error = listen(serve, service, host=args.host, port=args.port)
    return fail(error) if error else 0
