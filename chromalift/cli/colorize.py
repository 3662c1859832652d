"""`colorize PHOTO|FOLDER|VIDEO ... [-o OUT]`: the default command, thin over the library.

Plan every output first (plan.py), load the model once, then each film (video.py) and each photo
(read_photo -> Colorizer.colorize -> write_photo, metadata kept); one line per failure, a summary at
the end, Ctrl-C: the summary so far and exit 130.
"""
from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from chromalift.cli.main import SUBCOMMANDS, _fail, number


def _colorize_parser() -> argparse.ArgumentParser:
    from chromalift.film.settings import CUT_THRESHOLD, STEADY
    from chromalift.inference.geometry import DEFAULT_PROCESS_SIZE

    p = argparse.ArgumentParser(
        prog="colorize", description="Colorize black-and-white photos (files or folders, recursively) and films.",
        epilog="Other commands: " + ", ".join(f"colorize {c} -h" for c in SUBCOMMANDS))
    p.add_argument("inputs", nargs="+", help="photos, folders of photos, and/or videos (.mp4, .mkv, .mov, ...)")
    p.add_argument("-o", "--output", help="output file (one input photo) or folder; default: PHOTO_color.EXT "
                                          "beside each photo, FOLDER_color/ for a folder")
    p.add_argument("--model", help="weights (.safetensors) to use instead of the shipped model")
    p.add_argument("--reference", help="take the global features (the colour mood) from this photo: the paper's style transfer")
    p.add_argument("--process-size", type=number(int, 0, 16384), default=DEFAULT_PROCESS_SIZE,
                   help="longer side the local path sees at most (0 = the photo's own size); colour is "
                        "added back at full resolution")
    p.add_argument("--format", help="output extension for folders and multiple photos; keep (the default) = "
                                    "each input's own")
    p.add_argument("--quality", type=int, default=95, help="JPEG and WebP quality, 1-100 (default 95)")
    p.add_argument("--hint", action="append", default=[], metavar="X,Y,#RRGGBB",
                   help="a colour hint for one photo: this colour at pixel X,Y (from the top left of the photo as "
                        "shown), spread over its region along the photo's edges; repeat for more")
    p.add_argument("--hints", metavar="STROKES.png", help="colour strokes for one photo: an RGBA image of the photo's "
                   "size whose opaque pixels are hints (paint on a transparent layer)")
    p.add_argument("--show-class", action="store_true", help="print the 3 most likely scene classes of each photo")
    p.add_argument("--json", metavar="FILE", help="write a summary per photo (input, output, classes, seconds, "
                                                   "error) to FILE")
    p.add_argument("--overwrite", action="store_true", help="replace output files that already exist")
    p.add_argument("--resume", action="store_true", help="skip outputs that already exist (complete: every output is "
                   "written atomically) and do the rest; implied by --shard and torchrun")
    p.add_argument("--shard", metavar="I/N", help="do the I-th of N equal shares of the inputs (0 <= I < N), e.g. "
                   "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT; --json FILE becomes FILE.shard-I-of-N.json. "
                   "Under torchrun the ranks share the work by themselves")
    p.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    p.add_argument("--max-pixels", type=number(float, 1, 1e10), default=120e6, help="refuse photos larger than this many pixels")
    p.add_argument("--backend", default="auto", choices=["auto", "numpy", "onnx", "torch"],
                   help="inference engine: auto = NumPy for one photo on the CPU with the shipped model and a "
                        "process size up to 1024 (no torch import: the fastest start), else fused PyTorch (the "
                        "fastest network); numpy = always NumPy (photos, CPU); onnx = ONNX Runtime")
    v = p.add_argument_group("videos")
    v.add_argument("--prior", choices=["shot", "frame"], default="shot",
                   help="shot: one global prior per shot, the mean of its frames' (steady colours); "
                        "frame: each frame its own, as for photos (flickers more)")
    v.add_argument("--cut-threshold", type=number(float, 0, 100), default=CUT_THRESHOLD,
                   help="mean change of L (0-100) between frames that counts as a shot cut")
    v.add_argument("--steady", type=number(float, 0, 1), default=None,
                   help=f"0-1: where luminance did not change since the last frame, lean on its colour this much "
                        f"(calms colour noise in still areas; default {STEADY} with --prior shot, 0 with frame)")
    v.add_argument("--batch", type=number(int, 1, 1024), default=8, help="frames colorized together")
    return p


def _colorize_video(colorizer, src: Path, dst: Path, args, reference) -> None:
    from chromalift.film.run import colorize_video

    result = colorize_video(colorizer, src, dst, prior_mode=args.prior, reference=reference,
                            process_size=args.process_size or None, batch=args.batch,
                            cut_threshold=args.cut_threshold, steady=args.steady, overwrite=args.overwrite)
    resumed = f", {result.resumed_shots} finished before" if result.resumed_shots else ""
    print(f"{src}: {result.frames} frames, {len(result.shots)} shots{resumed}", file=sys.stderr)


class _Photos:
    """The three stages of one photo for pipeline.overlapped: read, colorize, write (metadata kept)."""

    def __init__(self, colorizer, args, prior, hints=None):
        self.colorizer, self.args, self.prior, self.hints = colorizer, args, prior, hints

    def read(self, job):
        import time

        from chromalift.io.photos import read_photo
        t0 = time.perf_counter()
        photo = read_photo(job.src, max_pixels=int(self.args.max_pixels))
        return photo, time.perf_counter() - t0

    def work(self, job, data):
        """-> (pixels, classes, seconds); classes only when asked, from the same global pass."""
        import time

        from chromalift.io.photos import DEEP_FORMATS
        photo, _ = data
        t0 = time.perf_counter()
        bits = 16 if photo.bits == 16 and job.dst.suffix.lower() in DEEP_FORMATS and photo.alpha is None else 8
        size, classes, c = self.args.process_size or None, [], self.colorizer
        if self.args.show_class or self.args.json:
            rgb, logits = c.colorize_and_classify(photo.pixels, prior=self.prior, process_size=size, bits=bits,
                                                  **self._hints())
            classes = c.top_classes(logits)
        else:
            rgb = c.colorize(photo.pixels, prior=self.prior, process_size=size, bits=bits, **self._hints())
        return rgb, classes, time.perf_counter() - t0

    def _hints(self) -> dict:
        return {"hints": self.hints} if self.hints else {}

    def write(self, job, data, result) -> dict:
        """-> the photo's record for --json."""
        import time

        from chromalift.io.photos import write_photo
        (photo, read_s), (rgb, classes, work_s) = data, result
        t0 = time.perf_counter()
        write_photo(job.dst, rgb, photo.alpha, overwrite=self.args.overwrite, meta=photo.meta,
                    note=self.colorizer.note, quality=self.args.quality)
        seconds = read_s + work_s + time.perf_counter() - t0
        return _record(job.src, job.dst, classes=[{"class": n, "p": round(p, 4)} for n, p in classes],
                       seconds=round(seconds, 3)) | {"_warnings": photo.warnings, "_classes": classes}


class _NoBar:
    def update(self) -> None:
        pass

    def write(self, line: str, file=None) -> None:
        print(line, file=file)

    def close(self) -> None:
        pass


def _colorize_photos(colorizer, photos: list, args, prior, records: list, failures: list, counted: list) -> None:
    """The photos through read -> colorize -> write, overlapped (pipeline.py); one line per failure.
    Each photo written is appended to `counted` (which survives a Ctrl-C)."""
    from chromalift.batch.pipeline import overlapped
    from chromalift.inference.hints import HintError
    from chromalift.io.photos import ImageError

    if len(photos) < 2 or args.show_class:
        bar = _NoBar()          # and no tqdm import: one photo starts sooner
    else:
        from chromalift.progress import bar as progress_bar
        bar = progress_bar(total=len(photos), desc="colorize", unit="photo")

    def finished(job, record, error):
        bar.update()
        if error is None:
            for line in record.pop("_warnings"):
                bar.write(f"colorize: warning: {line}", file=sys.stderr)
            classes = record.pop("_classes")
            if args.show_class:
                print(f"{job.src}: " + ", ".join(f"{name} {p:.0%}" for name, p in classes))
            records.append(record)
            counted.append(job)
            return
        if isinstance(error, RuntimeError) and _out_of_memory(error):
            error = MemoryError(str(error))          # torch reports it as a RuntimeError: this photo's failure
        if not isinstance(error, (ImageError, MemoryError, HintError)):
            raise error
        if isinstance(error, ImageError):
            message = str(error)                     # names the file already
        elif isinstance(error, HintError):
            message = f"{job.src}: {error}"
        else:
            message = f"{job.src}: out of memory; try a smaller --process-size or --max-pixels"
        failures.append(message)
        records.append(_record(job.src, error=message))
        bar.write(f"colorize: error: {message}", file=sys.stderr)

    stages = _Photos(colorizer, args, prior, getattr(args, "hint_set", None))
    try:
        overlapped(photos, stages.read, stages.work, stages.write, finished)
    finally:
        bar.close()


def _out_of_memory(error: RuntimeError) -> bool:
    text = str(error).lower()
    return "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text


def _record(src, dst=None, *, error: str | None = None, classes: list | None = None,
            seconds: float | None = None) -> dict:
    """One --json record; the same keys for successes and failures."""
    return {"input": None if src is None else str(src), "output": None if dst is None else str(dst),
            "classes": classes or [], "seconds": seconds, "error": error}


def _write_json(path: str, records: list[dict]) -> None:
    import json

    from chromalift.io.atomic import atomic_write
    text = json.dumps(records, indent=1)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


@dataclass
class _Tally:
    """What one process did; gathered on rank 0 under torchrun."""
    done: int = 0
    count: int = 0
    skipped: int = 0
    videos: int = 0
    photos: int = 0
    failures: list = field(default_factory=list)
    records: list = field(default_factory=list)
    last: str | None = None   # the output of a one-file run, printed alone
    interrupted: bool = False


def cmd_colorize(argv: list[str]) -> int:
    args = _colorize_parser().parse_args(argv)     # --help answers here, before torch is imported
    from chromalift.batch.plan import PlanError, plan_outputs
    from chromalift.batch.shard import Shard
    from chromalift.io.photos import ImageError, read_photo

    fmt = None if args.format in (None, "keep") else args.format
    try:
        if not 1 <= args.quality <= 100:
            raise ValueError(f"--quality {args.quality}: choose 1-100")
        if args.resume and args.overwrite:
            raise ValueError("--resume keeps the outputs that exist and --overwrite replaces them: choose one")
        shard = Shard.parse(args.shard)
        resume = args.resume or shard.split
        plan = plan_outputs(args.inputs, args.output, fmt, overwrite=args.overwrite, report=args.json, resume=resume)
        args.hint_set = _read_hints(args, plan)
        colorizer = _load(args, plan, shard)
        reference = read_photo(args.reference, max_pixels=int(args.max_pixels)).rgb if args.reference else None
    except (PlanError, ImageError, ValueError) as e:
        return _fail(str(e))
    shard.start()
    try:
        mine = shard.take(plan.jobs)
        todo = [j for j in mine if not (resume and j.dst.exists())]
        tally = _run(colorizer, todo, args, reference, plan if shard.index == 0 else None)
        tally.skipped = len(mine) - len(todo)    # not tally.count: that holds the plan's refusals too
        tally.count += tally.skipped
        tallies = [tally] if tally.interrupted else shard.gather(tally)
        reported = True
        if not shard.launched or shard.index == 0 or tally.interrupted:
            reported = _report(tallies, args.json and shard.json_path(args.json), shard)
    finally:
        shard.stop()
    failed = any(t.failures for t in tallies) or not reported
    return 130 if tally.interrupted else 1 if failed else 0


def _read_hints(args, plan):
    """The --hint points and --hints strokes (None without any); ValueError with one line for what is wrong."""
    if not args.hint and not args.hints:
        return None
    from chromalift.inference.hints import Hints, parse_point
    from chromalift.io.formats import is_video
    if len(plan.jobs) != 1 or is_video(plan.jobs[0].src):
        raise ValueError("--hint and --hints are in one photo's pixels: give exactly one photo")
    if args.backend == "numpy":
        raise ValueError("colour hints run on the PyTorch backend: leave out --backend numpy")
    from chromalift.cli.main import _missing_extra
    if message := _missing_extra("colorize --hint", "hints", "scipy"):
        raise ValueError(message)
    strokes = None
    if args.hints:
        from chromalift.io.photos import ImageError, read_photo
        try:
            photo = read_photo(args.hints, max_pixels=int(args.max_pixels))
        except ImageError as e:
            raise ValueError(f"--hints: {e}") from None
        if photo.alpha is None:
            raise ValueError(f"--hints {args.hints}: has no transparency; paint the strokes on a transparent layer (RGBA PNG)")
        import numpy as np
        strokes = np.dstack([photo.u8, photo.alpha])
    return Hints(tuple(parse_point(t) for t in args.hint), strokes)


def _load(args, plan, shard):
    """The NumPy colorizer (lite.py: no torch import) for one photo on the CPU with the shipped model and a
    bounded process size, or when asked; else PyTorch's. ValueError with one line for what cannot be loaded
    or combined."""
    from chromalift.inference.geometry import NUMPY_MAX_PROCESS_SIZE
    from chromalift.io.formats import is_video

    one_photo = len(plan.jobs) == 1 and not is_video(plan.jobs[0].src)
    small = 0 < args.process_size <= NUMPY_MAX_PROCESS_SIZE
    if args.backend == "numpy" or (args.backend == "auto" and one_photo and small and args.model is None
                                   and not getattr(args, "hint_set", None)
                                   and args.device in ("auto", "cpu") and not shard.launched):
        if args.device not in ("auto", "cpu"):
            raise ValueError(f"--backend numpy runs on the CPU, not --device {args.device}")
        if any(is_video(job.src) for job in plan.jobs):
            raise ValueError("--backend numpy colorizes photos; films need the PyTorch backend")
        from chromalift.inference.numpy_engine import LiteColorizer
        return LiteColorizer.load(args.model)
    from chromalift.inference.colorizer import Colorizer
    from chromalift.model.weights import CheckpointError
    try:
        return Colorizer.load(args.model, device=shard.device(args.device), backend=args.backend)
    except CheckpointError as e:
        raise ValueError(str(e)) from None


def _run(colorizer, jobs: list, args, reference, plan) -> _Tally:
    """This process's films and photos; `plan` (on one process only) adds the plan's errors and notes."""
    from chromalift.io.formats import is_video

    tally = _Tally(count=len(jobs))
    if plan is not None:
        tally.failures, tally.count = list(plan.errors), tally.count + len(plan.errors)
        tally.records = [_record(None, error=e) for e in plan.errors]
        for line in plan.errors:
            print(f"colorize: error: {line}", file=sys.stderr)
        for line in plan.notes:
            print(f"colorize: {line}", file=sys.stderr)
    prior = colorizer.prior(reference, scores=False)[0] if reference is not None else None
    videos = [job for job in jobs if is_video(job.src)]
    photos = [job for job in jobs if not is_video(job.src)]
    tally.videos, tally.photos, counted = len(videos), len(photos), []   # counted: photos written, kept on Ctrl-C
    previous = _sigterm_as_interrupt()
    try:
        for job in videos:
            from chromalift.film.run import VideoError
            try:
                _colorize_video(colorizer, job.src, job.dst, args, reference)
                tally.done += 1
                tally.records.append(_record(job.src, job.dst))
            except VideoError as e:
                tally.failures.append(str(e))
                tally.records.append(_record(job.src, error=str(e)))
                print(f"colorize: error: {e}", file=sys.stderr)
        _colorize_photos(colorizer, photos, args, prior, tally.records, tally.failures, counted)
    except KeyboardInterrupt:
        tally.interrupted = True
        print("\ncolorize: interrupted; what was written is complete (films resume when run again)", file=sys.stderr)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    tally.done += len(counted)
    if len(jobs) == 1 and tally.done == 1:
        tally.last = str(jobs[0].dst)
    return tally


def _sigterm_as_interrupt():
    """SIGTERM (what schedulers and `kill` send) ends a run as Ctrl-C does: the summary so far, the --json
    report, exit 130. Returns the handler it replaced (None off the main thread, where none can be set)."""
    import threading
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum, frame):
        raise KeyboardInterrupt
    return signal.signal(signal.SIGTERM, interrupt)


def _report(tallies: list[_Tally], json_path: str | None, shard) -> bool:
    """The one summary (and --json file) of a run, from every process's tally; False if the report could
    not be written."""
    t = _Tally(**{k: sum(getattr(x, k) for x in tallies) for k in ("done", "count", "skipped", "videos", "photos")},
               failures=[f for x in tallies for f in x.failures], records=[r for x in tallies for r in x.records],
               interrupted=any(x.interrupted for x in tallies))
    json_error = None
    if json_path:
        try:
            _write_json(json_path, t.records)
        except OSError as e:   # a full disk or an unwritable folder: the summary still comes, the file is named
            json_error = f"{json_path}: cannot write the --json report ({e.strerror or e})"
    if t.count == 1 and t.done == 1 and not t.interrupted and len(tallies) == 1:
        print(tallies[0].last)
    elif t.count > 1 or t.interrupted or t.skipped:
        noun = "files" if t.videos and t.photos else "videos" if t.videos else "photos"
        where = f" by {len(tallies)} processes" if len(tallies) > 1 else f" ({shard})" if shard.split else ""
        print(f"colorized {t.done} of {t.count} {noun}{where}" + (" before the interruption" if t.interrupted else "")
              + (f"; {t.skipped} {'was' if t.skipped == 1 else 'were'} done already (skipped)" if t.skipped else "")
              + (f"; {len(t.failures)} failed:" if t.failures else ""))
        for f in t.failures:
            print(f"  {f}")
    if json_error:
        print(f"colorize: error: {json_error}", file=sys.stderr)
    return json_error is None


