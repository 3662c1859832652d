"""Colorize films without flicker: one global prior per shot.

The network's global features are a scene prior (256-d in the paper). Computed frame by frame, they
wander with every change of framing and grain, and the colours of a still scene wander with them. Here
every shot gets one prior, the mean of its frames' priors, so the colour mood holds steady while the
local features follow the motion.

Two passes over the video (decoding is cheap beside the network):
  1. scan: decode every frame at the global size, run the global path, and score how much each frame
     differs from the one before; a shot cut is where that score jumps (`find_cuts`).
  2. colorize: decode again, colorize the frames in batches with their shot's prior, and encode each
     shot into its own segment file in a work folder beside the output (`.NAME.parts/`).
Finished shots survive an interruption: running the same command again skips them. Last, the segments
and the source's audio track are joined into the output without re-encoding; the output appears only
when it is complete, and the work folder is then removed.
"""
from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .color import l_from_uint8, normalize_l
from .defaults import CUT_RATIO, CUT_THRESHOLD, DEFAULT_PROCESS_SIZE, STEADY
from .files import already_exists
from .inference import Colorizer
from .media import VIDEO_EXTENSIONS, find_videos, is_video  # noqa: F401 -- this module's names too

# What each output container gets: (video encoder, its options, audio codec when the source's cannot be copied)
_ENCODERS = {
    ".webm": ("libvpx-vp9", {"crf": "30", "b": "0", "row-mt": "1"}, "libopus"),
    ".avi": ("mpeg4", {"q:v": "3", "bf": "0"}, "mp3"),
    ".mpg": ("mpeg2video", {"q:v": "3", "bf": "0"}, "mp2"),
    ".mpeg": ("mpeg2video", {"q:v": "3", "bf": "0"}, "mp2"),
}
# H.264 elsewhere; no B-frames, so that segments join with monotonic timestamps; preset veryfast
# encodes 720p 3.3x faster than medium (24 vs 81 ms a frame here) with a file no larger at this CRF
_DEFAULT_ENCODER = ("libx264", {"crf": "17", "preset": "veryfast", "bf": "0"}, "aac")
THUMB = 32             # side of the greyscale thumbnail the cut score is computed on
BATCH_PIXELS = 8 * 1920 * 1080   # frames per batch are capped so that a batch holds at most this many pixels


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


@dataclass
class VideoResult:
    output: Path
    frames: int
    shots: list[Shot]
    colorized: int          # frames colorized by this call (fewer than frames when resumed)
    resumed_shots: int      # shots found finished from an earlier, interrupted call


def _open(path: Path):
    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if path.is_dir():
        raise VideoError(f"{path}: is a folder, not a video")
    try:
        container = av.open(str(path))
    except av.error.EOFError:
        raise VideoError(f"{path}: has no frames (the file ends before any video)") from None
    except av.error.FFmpegError as e:
        raise VideoError(f"{path}: not a video file FFmpeg can read ({_reason(e)})") from None
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


def _reason(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e).split(":")[-1].strip() or type(e).__name__


def probe(path: str | os.PathLike) -> VideoInfo:
    """Size, frame rate, codec and audio of a video; VideoError for anything FFmpeg cannot decode."""
    path = Path(path)
    container, stream = _open(path)
    try:
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


def _frames(path: Path) -> Iterator[av.VideoFrame]:
    container, stream = _open(path)
    count = 0
    try:
        for frame in container.decode(stream):
            count += 1
            yield frame
    except av.error.FFmpegError as e:
        raise VideoError(f"{path}: cannot decode frame {count + 1} ({_reason(e)})") from None
    finally:
        container.close()


@dataclass
class SteadyColour:
    """A temporal filter on the predicted ab, within a shot: where a pixel's luminance did not change
    since the frame before, its colour leans on the previous frame's colour (weight `strength`); where
    it changed (motion, a new object), the new prediction is taken as it is. This calms the colour
    'boiling' that grain causes in still areas without dragging colour across moving edges.
    Runs at the local path's resolution (cheap); reset() at every cut."""
    strength: float = 0.8   # weight of the previous frame's colour where nothing moved
    sigma: float = 3.0      # change of L (0-100, 3x3 mean) at which the weight has fallen to 1/e

    def __post_init__(self):
        self.reset()

    def reset(self) -> None:
        self._l = self._ab = None

    def __call__(self, l: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        out = []
        for i in range(l.shape[0]):   # frames in order; each leans on the filtered frame before it
            li, ab_i = l[i:i + 1], ab[i:i + 1]
            if self.strength > 0 and self._l is not None and self._l.shape == li.shape:
                change = F.avg_pool2d((li - self._l).abs(), 3, stride=1, padding=1, count_include_pad=False)
                weight = self.strength * torch.exp(-(change / self.sigma) ** 2)
                ab_i = ab_i + weight * (self._ab - ab_i)
            self._l, self._ab = li, ab_i
            out.append(ab_i)
        return torch.cat(out)


def find_cuts(scores: np.ndarray, threshold: float = CUT_THRESHOLD, ratio: float = CUT_RATIO,
              window: int = 12) -> list[int]:
    """Frames that start a new shot, from scores[i] = mean |L_i - L_(i-1)| (scores[0] is ignored).

    A cut is a change both large in itself and a spike against the motion around it (the median score
    of up to `window` frames on each side), so a fast pan, steadily large, is not cut into pieces while a
    cut after or before a calm stretch is found."""
    scores = np.asarray(scores, dtype=np.float64)
    cuts = []
    for i in range(1, len(scores)):
        if scores[i] < threshold:
            continue
        around = np.r_[scores[max(1, i - window):i], scores[i + 1:i + 1 + window]]
        if scores[i] >= ratio * (float(np.median(around)) if len(around) else 0.0):
            cuts.append(i)
    return cuts


def shots_from_cuts(cuts: list[int], frames: int) -> list[Shot]:
    bounds = [0] + list(cuts) + [frames]
    return [Shot(a, b) for a, b in itertools.pairwise(bounds) if b > a]


@torch.no_grad()
def scan(colorizer: Colorizer, path: str | os.PathLike, *, batch: int = 32, progress: bool = True,
         total: int | None = None, quarter_turns: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pass 1: every frame's global prior (N, C) and cut score (N,), decoding at the global size
    (turned upright by quarter_turns, as the network expects to see scenes)."""
    path = Path(path)
    g = colorizer.model.config.global_size
    priors, scores, pending = [], [], []
    previous = None

    def flush():
        l = torch.cat(pending).to(colorizer.device)
        priors.append(colorizer.engine.global_prior(normalize_l(l))[0].float().cpu())
        pending.clear()

    bar = tqdm(total=total, desc="scan shots", unit="frame", disable=not progress, leave=False)
    for frame in _frames(path):
        rgb = frame.reformat(width=g, height=g, format="rgb24", interpolation="AREA").to_ndarray()
        rgb = np.ascontiguousarray(np.rot90(rgb, quarter_turns))
        l = l_from_uint8(torch.from_numpy(rgb)[None])                                # (1, 1, g, g)
        thumb = F.adaptive_avg_pool2d(l, THUMB)
        scores.append(0.0 if previous is None else float((thumb - previous).abs().mean()))
        previous = thumb
        pending.append(l)
        if len(pending) == batch:
            flush()
        bar.update()
    bar.close()
    if pending:
        flush()
    if not scores:
        raise VideoError(f"{path}: has no frames")
    return torch.cat(priors).numpy(), np.asarray(scores, dtype=np.float32)


def _fingerprint(colorizer: Colorizer) -> str:
    h = hashlib.sha1()
    for t in colorizer.model.state_dict().values():
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _source_id(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _encoder(suffix: str):
    return _ENCODERS.get(suffix.lower(), _DEFAULT_ENCODER)


def _open_writer(path: Path, suffix: str, info: VideoInfo):
    codec, options, _ = _encoder(suffix)
    width, height, fps = info.width, info.height, info.fps
    out = av.open(str(path), "w", format=_muxer(suffix))
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


def _muxer(suffix: str) -> str | None:
    return {".m4v": "mp4", ".mov": "mov", ".mp4": "mp4", ".mkv": "matroska", ".webm": "webm", ".avi": "avi",
            ".ts": "mpegts", ".mpg": "mpeg", ".mpeg": "mpeg", ".3gp": "3gp", ".flv": "flv",
            ".ogv": "ogg", ".wmv": "asf"}.get(suffix.lower())


def colorize_video(colorizer: Colorizer, src: str | os.PathLike, dst: str | os.PathLike, *,
                   prior_mode: str = "shot", reference: np.ndarray | None = None,
                   process_size: int | None = DEFAULT_PROCESS_SIZE, batch: int = 8,
                   cut_threshold: float = CUT_THRESHOLD, steady: float | None = None, overwrite: bool = False,
                   progress: bool = True, on_shot: Callable[[int, Shot], None] | None = None) -> VideoResult:
    """Colorize the film `src` into `dst` (same frame rate, size and audio), resumably.

    prior_mode: 'shot' (one global prior per shot, the mean of its frames') or 'frame' (each frame its
    own, as a photo colorizer does; flickers more). `reference`: an (H, W, 3) float RGB photo whose
    prior every frame takes (the paper's style transfer). steady: strength of the SteadyColour filter
    (default STEADY with one prior per shot, 0 with one per frame; 0 = off: each frame is exactly what
    the photo colorizer gives with its prior). on_shot(i, shot) is called as each shot is finished."""
    src, dst = Path(src), Path(dst)
    if steady is None:
        steady = STEADY if prior_mode == "shot" else 0.0
    if prior_mode not in ("shot", "frame"):
        raise ValueError(f"prior_mode must be 'shot' or 'frame', not {prior_mode!r}")
    if dst.resolve() == src.resolve():
        raise VideoError(f"{dst}: is the input itself; choose another output")
    if dst.exists() and not overwrite:
        raise VideoError(already_exists(dst))
    if dst.suffix.lower() not in VIDEO_EXTENSIONS or _muxer(dst.suffix) is None:
        raise VideoError(f"{dst}: unknown video format {dst.suffix!r}; use .mp4, .mkv, .mov, .webm or .avi")
    info = probe(src)
    work = dst.with_name(f".{dst.name}.parts")
    settings = {"source": _source_id(src), "model": _fingerprint(colorizer), "prior_mode": prior_mode,
                "process_size": process_size, "cut_threshold": cut_threshold, "steady": steady,
                "output": dst.suffix.lower(),
                "reference": None if reference is None else hashlib.sha1(reference.tobytes()).hexdigest()}
    plan = _load_plan(work, settings)
    if plan is None:
        frame_priors, scores = scan(colorizer, src, progress=progress, total=info.frames,
                                    quarter_turns=info.quarter_turns)
        announced = info.announced_frames
        if announced and len(scores) < 0.9 * announced - 1:   # FFmpeg stops quietly at a cut-off end
            raise VideoError(f"{src}: truncated or damaged: {len(scores)} of the {announced} frames its header "
                             f"announces could be decoded; nothing written")
        shots = shots_from_cuts(find_cuts(scores, cut_threshold), len(scores))
        if reference is not None:
            frame_priors = np.repeat(colorizer.prior(reference)[0].float().cpu().numpy(), len(scores), 0)
        if prior_mode == "shot":   # one prior per shot: the mean of its frames' priors
            for s in shots:
                frame_priors[s.start:s.end] = frame_priors[s.start:s.end].mean(0, keepdims=True)
        if work.exists():
            shutil.rmtree(work)    # left by a run with other settings or another source: start afresh
        work.mkdir(parents=True)
        np.save(work / "priors.npy", frame_priors)
        (work / "plan.json").write_text(json.dumps({"settings": settings, "frames": len(scores),
                                                    "shots": [asdict(s) for s in shots]}, indent=1))
    else:
        shots = [Shot(**s) for s in plan["shots"]]
        frame_priors = np.load(work / "priors.npy")
    frames_total = shots[-1].end

    segment = lambda i: work / f"shot-{i:05d}{dst.suffix.lower()}"
    todo = [i for i in range(len(shots)) if not segment(i).exists()]
    resumed = len(shots) - len(todo)
    colorized = 0
    batch = max(1, min(batch, BATCH_PIXELS // (info.width * info.height)))   # 8 at 1080p, 2 at 4K
    if todo:
        colorized = _colorize_shots(colorizer, src, shots, set(todo), frame_priors, segment, info, dst.suffix,
                                    process_size, batch, progress, resumed, on_shot, SteadyColour(steady))
    _join(src, [segment(i) for i in range(len(shots))], shots, info, dst, overwrite)
    shutil.rmtree(work, ignore_errors=True)
    return VideoResult(dst, frames_total, shots, colorized, resumed)


def _load_plan(work: Path, settings: dict) -> dict | None:
    try:
        plan = json.loads((work / "plan.json").read_text())
        return plan if plan["settings"] == settings and (work / "priors.npy").exists() else None
    except (OSError, ValueError, KeyError):
        return None


def _colorize_shots(colorizer, src, shots, todo, frame_priors, segment, info, suffix, process_size, batch,
                    progress, resumed, on_shot, steady: SteadyColour) -> int:
    """Pass 2: colorize the frames of the unfinished shots, one segment file per shot."""
    owner = np.repeat(np.arange(len(shots)), [len(s) for s in shots])    # frame -> its shot
    total = int(sum(len(shots[i]) for i in todo))
    bar = tqdm(total=total, desc="colorize", unit="frame", disable=not progress, dynamic_ncols=True)
    bar.set_postfix_str(f"{len(shots)} shots" + (f", {resumed} done before" if resumed else ""))
    done = 0
    writer = stream = tmp = None
    pending: list[np.ndarray] = []
    first = 0   # frame index of pending[0]

    def flush():
        nonlocal done
        if not pending:
            return
        priors = torch.from_numpy(frame_priors[first:first + len(pending)])
        turns = info.quarter_turns   # the network sees frames upright; they are stored back as they came
        out = colorizer.colorize_batch(np.rot90(np.stack(pending), turns, axes=(1, 2)).copy(), priors,
                                       process_size=process_size,
                                       ab_filter=steady if steady.strength > 0 else None)
        for rgb in np.rot90(out, -turns, axes=(1, 2)):
            rgb = np.ascontiguousarray(rgb)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                writer.mux(packet)
        done += len(pending)
        bar.update(len(pending))
        pending.clear()

    try:
        for index, frame in enumerate(_frames(src)):
            if index >= len(owner):
                break
            shot_id = int(owner[index])
            if shot_id not in todo:
                continue
            if writer is None:
                tmp = segment(shot_id).with_name(f".tmp-{segment(shot_id).name}")
                writer, stream = _open_writer(tmp, suffix, info)
                steady.reset()   # a new shot: nothing to lean on
            if not pending:
                first = index
            # frames keep the first frame's size even where a stream changes resolution midway
            pending.append(frame.to_ndarray(format="rgb24", width=info.width, height=info.height))
            if len(pending) == batch or index + 1 == shots[shot_id].end:
                flush()
            if index + 1 == shots[shot_id].end:   # shot finished: close its segment and put it in place
                for packet in stream.encode():
                    writer.mux(packet)
                writer.close()
                writer = None
                os.replace(tmp, segment(shot_id))
                if on_shot is not None:
                    on_shot(shot_id, shots[shot_id])
    except (av.error.FFmpegError, OSError) as e:   # a full disk, a folder gone read-only, an encoder failure
        raise VideoError(f"{tmp}: cannot write the shot ({_reason(e)}); finished shots are kept") from None
    finally:
        bar.close()
        if writer is not None:      # an unfinished segment never stays: its close may fail too (full disk)
            try:
                writer.close()
            except (av.error.FFmpegError, OSError):
                pass
            tmp.unlink(missing_ok=True)
    missing = [i for i in sorted(todo) if not segment(i).exists()]
    if missing:
        raise VideoError(f"{src}: ended before shot {missing[0] + 1} of {len(shots)} (frame {shots[missing[0]].start})"
                         "; was it changed since the scan?")
    return done


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


def _join(src: Path, segments: list[Path], shots: list[Shot], info: VideoInfo, dst: Path, overwrite: bool) -> None:
    """Join the shot segments and the source's audio into dst, without re-encoding the video."""
    if dst.exists() and not overwrite:
        raise VideoError(already_exists(dst))
    tmp = dst.with_name(f".tmp-{dst.name}")
    try:
        with av.open(str(segments[0])) as first, av.open(str(tmp), "w", format=_muxer(dst.suffix)) as out:
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
        raise VideoError(f"{dst}: cannot write the video ({_reason(e)})") from None
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
        muxer = _muxer(suffix)
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


def frame_flicker(frames_ab: list[np.ndarray] | np.ndarray, shots: list[Shot] | None = None) -> dict:
    """Flicker of a colorized clip: the mean absolute change of ab between consecutive frames of a shot
    (`pixel`, Lab units, per pixel) and of the frame-mean ab (`mood`, the global colour cast)."""
    ab = [np.asarray(a, dtype=np.float32) for a in frames_ab]
    same_shot = [True] * len(ab)
    for s in shots or []:
        same_shot[s.start] = False
    pix, mood = [], []
    for i in range(1, len(ab)):
        if same_shot[i]:
            pix.append(float(np.abs(ab[i] - ab[i - 1]).mean()))
            mood.append(float(np.abs(ab[i].mean((0, 1)) - ab[i - 1].mean((0, 1))).mean()))
    return {"pixel": float(np.mean(pix)) if pix else 0.0, "mood": float(np.mean(mood)) if mood else 0.0}


def read_frames(path: str | os.PathLike) -> list[np.ndarray]:
    """All frames of a video as (H, W, 3) uint8 RGB (for tests and measurements on short clips)."""
    return [f.to_ndarray(format="rgb24") for f in _frames(Path(path))]
