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
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from chromalift.color.lab import l_from_uint8, normalize_l
from chromalift.evaluation.metrics import frame_flicker  # noqa: F401 -- this module's name too
from chromalift.film import work_folder as film_work
from chromalift.film.settings import CUT_THRESHOLD, MAX_FRAME_PIXELS, STEADY
from chromalift.film.shots import SteadyColour, find_cuts, shots_from_cuts
from chromalift.film.streams import (  # noqa: F401 -- VideoError, VideoInfo, Shot, probe and read_frames are this module's names too
    Shot,
    VideoError,
    VideoInfo,
    decode_frames,
    ffmpeg_reason,
    join_segments,
    muxer_for,
    open_writer,
    probe,
    read_frames,
)
from chromalift.inference.colorizer import Colorizer
from chromalift.inference.engines import weights_key
from chromalift.inference.geometry import DEFAULT_PROCESS_SIZE
from chromalift.io.atomic import already_exists, atomic_write
from chromalift.io.formats import VIDEO_EXTENSIONS, find_videos, is_video  # noqa: F401 -- this module's names too
from chromalift.progress import bar as progress_bar

THUMB = 32             # side of the greyscale thumbnail the cut score is computed on
BATCH_PIXELS = 8 * 1920 * 1080   # frames per batch are capped so that a batch holds at most this many pixels


@dataclass
class VideoResult:
    output: Path
    frames: int
    shots: list[Shot]
    colorized: int          # frames colorized by this call (fewer than frames when resumed)
    resumed_shots: int      # shots found finished from an earlier, interrupted call


def _growth_limit(info: VideoInfo) -> float:
    """The header's frame size passed the limit; a stream whose frames grow midway may not outgrow both."""
    return max(MAX_FRAME_PIXELS, info.width * info.height)


@torch.no_grad()
def scan(colorizer: Colorizer, path: str | os.PathLike, *, batch: int = 32, progress: bool = True,
         total: int | None = None, quarter_turns: int = 0, max_pixels: float | None = MAX_FRAME_PIXELS
         ) -> tuple[np.ndarray, np.ndarray]:
    """Pass 1: every frame's global prior (N, C) and cut score (N,), decoding at the global size
    (turned upright by quarter_turns, as the network expects to see scenes)."""
    path = Path(path)
    g = colorizer.model.config.global_size
    priors, scores, pending = [], [], []
    previous = None

    def flush():
        l = torch.cat(pending).to(colorizer.device)
        priors.append(colorizer.engine.global_prior(normalize_l(l), scores=False)[0].float().cpu())
        pending.clear()

    bar = progress_bar(total=total, desc="scan shots", unit="frame", disable=not progress, leave=False)
    for frame in decode_frames(path, max_pixels):
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


def _source_id(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def colorize_video(colorizer: Colorizer, src: str | os.PathLike, dst: str | os.PathLike, *,
                   prior_mode: str = "shot", reference: np.ndarray | None = None,
                   process_size: int | None = DEFAULT_PROCESS_SIZE, batch: int = 8,
                   cut_threshold: float = CUT_THRESHOLD, steady: float | None = None, overwrite: bool = False,
                   progress: bool = True, on_shot: Callable[[int, Shot], None] | None = None,
                   max_pixels: float = MAX_FRAME_PIXELS) -> VideoResult:
    """Colorize the film `src` into `dst` (same frame rate, size and audio), resumably.

    prior_mode: 'shot' (one global prior per shot, the mean of its frames') or 'frame' (each frame its
    own, as a photo colorizer does; flickers more). `reference`: an (H, W, 3) float RGB photo whose
    prior every frame takes (the paper's style transfer). steady: strength of the SteadyColour filter
    (default STEADY with one prior per shot, 0 with one per frame; 0 = off: each frame is exactly what
    the photo colorizer gives with its prior). on_shot(i, shot) is called as each shot is finished.
    Frames above max_pixels are refused on the header (a frame is colorized whole)."""
    src, dst = Path(src), Path(dst)
    if steady is None:
        steady = STEADY if prior_mode == "shot" else 0.0
    if prior_mode not in ("shot", "frame"):
        raise ValueError(f"prior_mode must be 'shot' or 'frame', not {prior_mode!r}")
    if dst.resolve() == src.resolve():
        raise VideoError(f"{dst}: is the input itself; choose another output")
    if dst.exists() and not overwrite:
        raise VideoError(already_exists(dst))
    if dst.suffix.lower() not in VIDEO_EXTENSIONS or muxer_for(dst.suffix) is None:
        raise VideoError(f"{dst}: unknown video format {dst.suffix!r}; use .mp4, .mkv, .mov, .webm or .avi")
    info = probe(src, max_pixels)
    work = film_work.work_folder(dst)
    lock = film_work.claim(work, dst)
    try:
        return _colorize_claimed(colorizer, src, dst, info, work, reference=reference, prior_mode=prior_mode,
                                 process_size=process_size, batch=batch, cut_threshold=cut_threshold, steady=steady,
                                 overwrite=overwrite, progress=progress, on_shot=on_shot)
    finally:
        film_work.release(work, lock)


def _colorize_claimed(colorizer, src: Path, dst: Path, info: VideoInfo, work: Path, *, reference, prior_mode,
                      process_size, batch, cut_threshold, steady, overwrite, progress, on_shot) -> VideoResult:
    """colorize_video once the work folder is ours and locked."""
    settings = {"source": _source_id(src), "model": weights_key(colorizer.model), "prior_mode": prior_mode,
                "process_size": process_size, "cut_threshold": cut_threshold, "steady": steady,
                "output": dst.suffix.lower(),
                "reference": None if reference is None else hashlib.sha1(reference.tobytes()).hexdigest()}
    shots, frame_priors = _plan_shots(colorizer, src, info, work, settings, reference, prior_mode, cut_threshold,
                                      progress)
    frames_total = shots[-1].end

    job = _ShotWork(src, info, shots, set(), frame_priors, work, dst.suffix, process_size,
                    max(1, min(batch, BATCH_PIXELS // (info.width * info.height))),   # 8 at 1080p, 2 at 4K
                    SteadyColour(steady), progress, on_shot=on_shot)
    job.todo = {i for i in range(len(shots)) if not job.segment(i).exists()}
    job.resumed = len(shots) - len(job.todo)
    colorized = _colorize_shots(colorizer, job) if job.todo else 0
    join_segments(src, [job.segment(i) for i in range(len(shots))], shots, info, dst, overwrite)
    film_work.clear(work)    # the film is in place; release() then removes the emptied folder
    return VideoResult(dst, frames_total, shots, colorized, job.resumed)


def _plan_shots(colorizer: Colorizer, src: Path, info: VideoInfo, work: Path, settings: dict, reference,
                prior_mode: str, cut_threshold: float, progress: bool) -> tuple[list[Shot], np.ndarray]:
    """Pass 1, or its result from an interrupted run with the same settings: the shots and each frame's prior."""
    plan = _load_plan(work, settings)
    if plan is not None:
        return [Shot(**s) for s in plan["shots"]], np.load(work / "priors.npy")
    frame_priors, scores = scan(colorizer, src, progress=progress, total=info.frames, quarter_turns=info.quarter_turns,
                                max_pixels=_growth_limit(info))
    announced = info.announced_frames
    if announced and len(scores) < 0.9 * announced - 1:   # FFmpeg stops quietly at a cut-off end
        raise VideoError(f"{src}: truncated or damaged: {len(scores)} of the {announced} frames its header "
                         f"announces could be decoded; nothing written")
    shots = shots_from_cuts(find_cuts(scores, cut_threshold), len(scores))
    if reference is not None:
        frame_priors = np.repeat(colorizer.prior(reference, scores=False)[0].float().cpu().numpy(), len(scores), 0)
    if prior_mode == "shot":   # one prior per shot: the mean of its frames' priors
        for s in shots:
            frame_priors[s.start:s.end] = frame_priors[s.start:s.end].mean(0, keepdims=True)
    film_work.clear(work)    # left by a run with other settings or another source: start afresh
    plan = json.dumps({"settings": settings, "frames": len(scores), "shots": [asdict(s) for s in shots]}, indent=1)
    try:   # atomically, priors first: a plan.json is only ever beside the complete priors it names
        atomic_write(work / "priors.npy", lambda tmp: np.save(tmp, frame_priors))
        atomic_write(work / "plan.json", lambda tmp: Path(tmp).write_text(plan))
    except OSError as e:
        raise VideoError(f"{work}: cannot write the film's plan ({e.strerror or e})") from None
    return shots, frame_priors


@dataclass
class _ShotWork:
    """What pass 2 needs: the film, its shots and their priors, where each shot's segment goes, and how."""
    src: Path
    info: VideoInfo
    shots: list[Shot]
    todo: set[int]
    frame_priors: np.ndarray
    work: Path
    suffix: str
    process_size: int | None
    batch: int
    steady: SteadyColour
    progress: bool = True
    resumed: int = 0
    on_shot: Callable[[int, Shot], None] | None = None

    def segment(self, i: int) -> Path:
        return self.work / f"shot-{i:05d}{self.suffix.lower()}"


def _load_plan(work: Path, settings: dict) -> dict | None:
    try:
        plan = json.loads((work / "plan.json").read_text())
        return plan if plan["settings"] == settings and (work / "priors.npy").exists() else None
    except (OSError, ValueError, KeyError):
        return None


class _Segment:
    """One shot's segment while it is written: into a temp file, put in place when the shot ends, and
    never left behind unfinished (its close may fail too: a full disk)."""

    def __init__(self, path: Path, suffix: str, info: VideoInfo):
        self.path, self.tmp = path, path.with_name(f".tmp-{path.name}")
        self.writer, self.stream = open_writer(self.tmp, suffix, info)

    def write(self, frames: np.ndarray) -> None:
        for rgb in frames:
            for packet in self.stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                self.writer.mux(packet)

    def finish(self) -> None:
        for packet in self.stream.encode():
            self.writer.mux(packet)
        self.writer.close()
        self.writer = None
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self.writer is not None:
            try:
                self.writer.close()
            except (av.error.FFmpegError, OSError):
                pass
        self.tmp.unlink(missing_ok=True)


def _colour(colorizer: Colorizer, job: _ShotWork, frames: list[np.ndarray], first: int) -> np.ndarray:
    """Frames first.. of the film in colour, each with its shot's prior; the network sees them upright and
    they go back as they came."""
    priors = torch.from_numpy(job.frame_priors[first:first + len(frames)])
    turns = job.info.quarter_turns
    out = colorizer.colorize_batch(np.rot90(np.stack(frames), turns, axes=(1, 2)).copy(), priors,
                                   process_size=job.process_size,
                                   ab_filter=job.steady if job.steady.strength > 0 else None)
    return np.rot90(out, -turns, axes=(1, 2))


def _colorize_shots(colorizer: Colorizer, job: _ShotWork) -> int:
    """Pass 2: colorize the frames of the unfinished shots, one segment file per shot; -> frames coloured."""
    shots, info = job.shots, job.info
    owner = np.repeat(np.arange(len(shots)), [len(s) for s in shots])    # frame -> its shot
    bar = progress_bar(total=int(sum(len(shots[i]) for i in job.todo)), desc="colorize", unit="frame",
               disable=not job.progress, dynamic_ncols=True)
    bar.set_postfix_str(f"{len(shots)} shots" + (f", {job.resumed} done before" if job.resumed else ""))
    done, first, segment = 0, 0, None
    pending: list[np.ndarray] = []   # frames first.. waiting for a full batch or their shot's end
    try:
        for index, frame in enumerate(decode_frames(job.src, _growth_limit(job.info))):
            if index >= len(owner):
                break
            shot_id = int(owner[index])
            if shot_id not in job.todo:
                continue
            if segment is None:
                segment = _Segment(job.segment(shot_id), job.suffix, info)
                job.steady.reset()   # a new shot: nothing to lean on
            if not pending:
                first = index
            # frames keep the first frame's size even where a stream changes resolution midway
            pending.append(frame.to_ndarray(format="rgb24", width=info.width, height=info.height))
            shot_ends = index + 1 == shots[shot_id].end
            if len(pending) == job.batch or shot_ends:
                segment.write(_colour(colorizer, job, pending, first))
                done += len(pending)
                bar.update(len(pending))
                pending.clear()
            if shot_ends:
                segment.finish()
                segment = None
                if job.on_shot is not None:
                    job.on_shot(shot_id, shots[shot_id])
    except (av.error.FFmpegError, OSError) as e:   # a full disk, a folder gone read-only, an encoder failure
        where = segment.tmp if segment is not None else job.work
        raise VideoError(f"{where}: cannot write the shot ({ffmpeg_reason(e)}); finished shots are kept") from None
    finally:
        bar.close()
        if segment is not None:
            segment.abort()
    missing = [i for i in sorted(job.todo) if not job.segment(i).exists()]
    if missing:
        raise VideoError(f"{job.src}: ended before shot {missing[0] + 1} of {len(shots)} (frame {shots[missing[0]].start})"
                         "; was it changed since the scan?")
    return done


