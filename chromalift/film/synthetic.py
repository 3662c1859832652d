"""Film clips with known truth, made from colour photos: a slow pan and zoom over each photo, a hard cut
to the next, optional film grain and exposure flicker, and an audio tone. Tests and
benchmarks/flicker.py colorize their greyscale version and compare with the colour frames.
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image


def pan_zoom(photo: np.ndarray, frames: int, size: tuple[int, int], *, pan: float = 0.15, zoom: float = 1.15,
             static: bool = False) -> list[np.ndarray]:
    """`frames` crops of an (H, W, 3) uint8 photo resized to size = (width, height): the crop window
    drifts by `pan` of the photo's width and shrinks by `zoom` over the shot (static: one framing)."""
    h, w = photo.shape[:2]
    out_w, out_h = size
    img = Image.fromarray(photo)
    base = min(w / out_w, h / out_h)   # the largest crop of the output's aspect ratio
    clips = []
    for i in range(frames):
        t = 0.0 if static or frames == 1 else i / (frames - 1)
        scale = base / (1 + (zoom - 1) * t)
        cw, ch = out_w * scale, out_h * scale
        cx = (w - cw) / 2 + (pan * w * (t - 0.5) if not static else 0.0)
        cy = (h - ch) / 2
        cx = min(max(cx, 0.0), w - cw)
        box = (cx, cy, cx + cw, cy + ch)
        clips.append(np.asarray(img.resize(size, Image.BICUBIC, box=box)))
    return clips


def film_look(frames: list[np.ndarray], *, grain: float = 4.0, exposure: float = 0.03, seed: int = 0
              ) -> list[np.ndarray]:
    """Old-film imperfections: Gaussian grain (std in 8-bit levels) and a random gain per frame."""
    rng = np.random.default_rng(seed)
    out = []
    for f in frames:
        gain = 1.0 + rng.uniform(-exposure, exposure)
        noisy = f.astype(np.float32) * gain + rng.normal(0, grain, f.shape[:2])[..., None]
        out.append(np.clip(noisy, 0, 255).round().astype(np.uint8))
    return out


def to_grey(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Greyscale copies (ITU-R 601 luma, as an old film scan would be), still 3-channel."""
    return [np.repeat((f @ np.array([0.299, 0.587, 0.114]))[..., None].round().clip(0, 255).astype(np.uint8), 3, 2)
            for f in frames]


def write_clip(path: str | os.PathLike, frames: list[np.ndarray], fps: int | Fraction = 24, *,
               audio_hz: float | None = 440.0, lossless: bool = True) -> Path:
    """Encode frames (H, W, 3) uint8 into a video file, with a sine tone as its audio track."""
    path = Path(path)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=Fraction(fps))
        video.width, video.height = w, h
        video.pix_fmt = "yuv444p" if lossless else "yuv420p"
        video.options = {"qp": "0"} if lossless else {"crf": "18"}
        audio = None
        if audio_hz:
            audio = out.add_stream("aac", rate=48000)
            audio.layout = "mono"
        for f in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if audio is not None:
            seconds = len(frames) / float(fps)
            n = int(seconds * 48000)
            tone = (0.2 * np.sin(2 * np.pi * audio_hz * np.arange(n) / 48000)).astype(np.float32)
            for start in range(0, n, 1024):
                chunk = tone[start:start + 1024]
                frame = av.AudioFrame.from_ndarray(chunk[None], format="flt", layout="mono")
                frame.sample_rate = 48000
                frame.pts = start
                for packet in audio.encode(frame):
                    out.mux(packet)
            for packet in audio.encode():
                out.mux(packet)
    return path
