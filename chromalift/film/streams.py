"""Films in and out through PyAV (FFmpeg), and nothing else: probing, decoding frames, writing each shot's
segment, and joining the segments with the source's audio without re-encoding the video. No torch here:
film/run.py does the colour, this module the containers, codecs, rotation, pixel aspect and audio.
"""
from __future__ import annotations

import heapq
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from chromalift.io.atomic import already_exists

# What each output container gets: (video encoder, its options, audio codec when the source's cannot be copied)
_ENCODERS = {
    ".webm": ("libvpx-vp9", {"crf": "30", "b": "0", "row-mt": "1"}, "libopus"),
    ".avi": ("mpeg4", {"q:v": "3", "bf": "0"}, "mp3"),
    ".mpg": ("mpeg2video", {"q:v": "3", "bf": "0"}, "mp2"),
    ".mpeg": ("mpeg2video", {"q:v": "3", "bf": "0"}, "mp2"),
}


# H.264 elsewhere; no B-frames, so that segments join with monotonic timestamps; preset veryfast: far
# faster than medium with a file no larger at this CRF (docs/speed.md, "Defaults")
_DEFAULT_ENCODER = ("libx264", {"crf": "17", "preset": "veryfast", "bf": "0"}, "aac")


class VideoError(Exception):
    """A video that cannot be read or written; str() is a one-line message naming the file."""


@dataclass
class VideoInfo:
    width: int
    height: int
    fps: Fraction
    frames: int | None      # as the container claims (may be missing or wrong); scan() counts for real
    codec: str
    audio: str | None       # the first audio track's codec, if any
    aspect: Fraction | None = None   # pixel (sample) aspect ratio of anamorphic video, e.g. 32/27 on a DVD
    rotation: int = 0       # degrees counter-clockwise the player turns the frames (phones: -90, 90, 180)
    duration: float | None = None   # seconds, as the container claims

    @property
    def announced_frames(self) -> int | None:
        """How many frames the header promises: its count, or its duration times the frame rate."""
        if self.frames:
            return self.frames
        return round(self.duration * float(self.fps)) if self.duration else None

    @property
    def quarter_turns(self) -> int:
        """np.rot90's k that turns a stored frame upright (as players show it)."""
        return round(self.rotation / 90) % 4


@dataclass
class Shot:
    start: int   # first frame
    end: int     # one past the last frame

    def __len__(self) -> int:
        return self.end - self.start


def _open(path: Path):
    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if path.is_dir():
        raise VideoError(f"{path}: is a folder, not a video")
    if not path.is_file():   # a FIFO named .mp4 would block the decoder until Ctrl-C
        raise VideoError(f"{path}: not a regular file (a pipe or a device), not a video")
    try:
        container = av.open(str(path))
    except av.error.EOFError:
        raise VideoError(f"{path}: has no frames (the file ends before any video)") from None
    except av.error.FFmpegError as e:
        raise VideoError(f"{path}: not a video file FFmpeg can read ({ffmpeg_reason(e)})") from None
    if container.format.name == "image2" or container.format.name.endswith("_pipe"):
        container.close()
        raise VideoError(f"{path}: is a still image ({container.format.name.removesuffix('_pipe')}), not a video; "
                         f"colorize it as a photo with its own extension")
    if not container.streams.video:
        empty = not container.streams
        container.close()
        raise VideoError(f"{path}: has no frames (the file holds no video track)" if empty else
                         f"{path}: has no video track (audio or data only)")
    stream = container.streams.video[0]
    if stream.codec_context is None or not stream.codec_context.name or stream.codec_context.name == "none":
        container.close()
        raise VideoError(f"{path}: its video codec is not supported (no decoder in this FFmpeg build)")
    stream.thread_type = "AUTO"
    return container, stream


def ffmpeg_reason(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e).split(":")[-1].strip() or type(e).__name__


def probe(path: str | os.PathLike, max_pixels: float | None = None) -> VideoInfo:
    """Size, frame rate, codec and audio of a video; VideoError for anything FFmpeg cannot decode, or for
    frames above max_pixels (checked on the header, before a frame is decoded)."""
    path = Path(path)
    container, stream = _open(path)
    try:
        _check_size(path, stream.codec_context.width, stream.codec_context.height, max_pixels)
        fps = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(25)
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        aspect = stream.codec_context.sample_aspect_ratio or stream.sample_aspect_ratio
        try:   # the display rotation is side data of the frames: decode the first
            rotation = int(getattr(next(container.decode(stream), None), "rotation", 0) or 0)
        except av.error.FFmpegError:
            rotation = 0   # scan() reports an undecodable video with the frame number
        return VideoInfo(stream.codec_context.width, stream.codec_context.height, Fraction(fps),
                         stream.frames or None, stream.codec_context.name, audio,
                         Fraction(aspect) if aspect and aspect != 1 else None, rotation,
                         container.duration / av.time_base if container.duration else None)
    finally:
        container.close()


def _check_size(path: Path, width: int, height: int, max_pixels: float | None) -> None:
    if max_pixels and width * height > max_pixels:
        raise VideoError(f"{path}: its frames are {width}x{height} ({width * height / 1e6:.0f} MP), above the limit "
                         f"of {max_pixels / 1e6:.0f} MP a frame")


def decode_frames(path: Path, max_pixels: float | None = None) -> Iterator[av.VideoFrame]:
    """The frames of the video's first stream; VideoError for one that cannot be decoded or (a stream that
    changes size midway) is above max_pixels."""
    container, stream = _open(path)
    count = 0
    try:
        for frame in container.decode(stream):
            count += 1
            _check_size(path, frame.width, frame.height, max_pixels)
            yield frame
    except av.error.FFmpegError as e:
        raise VideoError(f"{path}: cannot decode frame {count + 1} ({ffmpeg_reason(e)})") from None
    finally:
        container.close()


def _encoder(suffix: str):
    return _ENCODERS.get(suffix.lower(), _DEFAULT_ENCODER)


def open_writer(path: Path, suffix: str, info: VideoInfo):
    codec, options, _ = _encoder(suffix)
    width, height, fps = info.width, info.height, info.fps
    out = av.open(str(path), "w", format=muxer_for(suffix))
    stream = out.add_stream(codec, rate=fps)
    stream.width, stream.height = width, height
    if info.aspect:
        stream.codec_context.sample_aspect_ratio = info.aspect
    if info.rotation:
        stream.set_display_rotation(info.rotation)
    # 4:2:0 needs even sides; odd-sized films keep their size with full-resolution chroma instead
    stream.pix_fmt = "yuv420p" if (width % 2 == 0 and height % 2 == 0) or codec != "libx264" else "yuv444p"
    stream.options = dict(options)
    stream.codec_context.time_base = 1 / fps
    return out, stream


def muxer_for(suffix: str) -> str | None:
    return {".m4v": "mp4", ".mov": "mov", ".mp4": "mp4", ".mkv": "matroska", ".webm": "webm", ".avi": "avi",
            ".ts": "mpegts", ".mpg": "mpeg", ".mpeg": "mpeg", ".3gp": "3gp", ".flv": "flv",
            ".ogv": "ogg", ".wmv": "asf"}.get(suffix.lower())


def _packets(path: Path, offset_seconds: float, kind: str) -> Iterator[tuple[float, av.Packet]]:
    container = av.open(str(path))
    try:
        stream = getattr(container.streams, kind)[0]
        for packet in container.demux(stream):
            if packet.dts is None:   # the demuxer's end-of-stream marker
                continue
            tb = packet.time_base
            shift = round(offset_seconds / tb)
            packet.dts += shift
            packet.pts = packet.pts + shift if packet.pts is not None else None
            yield float(packet.dts * tb), packet
    finally:
        container.close()


def _video_packets(segments: list[Path], shots: list[Shot], fps: Fraction):
    for seg, shot in zip(segments, shots):
        yield from _packets(seg, float(shot.start / fps), "video")


def join_segments(src: Path, segments: list[Path], shots: list[Shot], info: VideoInfo, dst: Path, overwrite: bool) -> None:
    """Join the shot segments and the source's audio into dst, without re-encoding the video. The joined
    file is made in the segments' work folder (the run's own, locked: nothing beside dst is touched) and
    renamed into place."""
    if dst.exists() and not overwrite:
        raise VideoError(already_exists(dst))
    tmp = segments[0].parent / f".tmp-joined{dst.suffix.lower()}"
    try:
        with av.open(str(segments[0])) as first, av.open(str(tmp), "w", format=muxer_for(dst.suffix)) as out:
            video = out.add_stream_from_template(first.streams.video[0])
            streams = [(_video_packets(segments, shots, info.fps), video)]
            if info.audio:
                streams.append(_audio(src, out, dst.suffix))
            tagged = lambda k, gen: ((t, k, packet) for t, packet in gen)
            merged = heapq.merge(*[tagged(k, gen) for k, (gen, _) in enumerate(streams)],
                                 key=lambda item: (item[0], item[1]))
            for _, k, packet in merged:
                packet.stream = streams[k][1]
                out.mux(packet)
        os.replace(tmp, dst)
    except (av.error.FFmpegError, OSError) as e:
        raise VideoError(f"{dst}: cannot write the video ({ffmpeg_reason(e)})") from None
    finally:
        tmp.unlink(missing_ok=True)


# Audio codecs each container takes as they are; others are re-encoded (Matroska takes everything)
_AUDIO_COPY = {
    "mp4": {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"}, "3gp": {"aac", "amr_nb", "amr_wb"},
    "mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_f32le"},
    "webm": {"opus", "vorbis"}, "avi": {"mp3", "ac3", "aac", "mp2", "pcm_s16le", "pcm_u8"},
    "mpegts": {"aac", "mp2", "mp3", "ac3", "eac3", "opus"}, "mpeg": {"mp2", "mp3", "ac3"},
    "ogg": {"vorbis", "opus", "flac"},
}


def _audio(src: Path, out, suffix: str):
    """The source's first audio track for `out`: copied as it is where the container takes its codec,
    else re-encoded to the container's usual audio codec. -> (timed packet iterator, output stream)."""
    with av.open(str(src)) as container:
        template = container.streams.audio[0]
        muxer = muxer_for(suffix)
        if muxer == "matroska" or template.codec_context.name in _AUDIO_COPY.get(muxer, ()):
            return _packets(src, 0.0, "audio"), out.add_stream_from_template(template)
    return _transcoded_audio(src, out, _encoder(suffix)[2])


def _transcoded_audio(src: Path, out, codec: str):
    container = av.open(str(src))
    template = container.streams.audio[0]
    stream = out.add_stream(codec, rate=template.codec_context.sample_rate or 48000)
    if template.codec_context.layout is not None:
        stream.layout = template.codec_context.layout

    def packets():
        try:
            for frame in container.decode(template):
                frame.pts = None
                for packet in stream.encode(frame):
                    yield float(packet.pts * packet.time_base) if packet.pts is not None else 0.0, packet
            for packet in stream.encode(None):
                yield float(packet.pts * packet.time_base) if packet.pts is not None else 0.0, packet
        finally:
            container.close()

    return packets(), stream


def read_frames(path: str | os.PathLike) -> list[np.ndarray]:
    """All frames of a video as (H, W, 3) uint8 RGB (for tests and measurements on short clips)."""
    return [f.to_ndarray(format="rgb24") for f in decode_frames(Path(path))]
