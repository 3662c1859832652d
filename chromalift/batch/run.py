"""colorize_files: photos, folders and films in, colorized files out, for the library and the CLI alike.

Plan every output first (plan.py), load the model once, then each film (film/run.py) and each photo through
read -> colorize -> write (metadata kept), overlapped (pipeline.py); one line per failure. Ctrl-C or
SIGTERM ends the run with what was written complete.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from chromalift.film.settings import CUT_THRESHOLD, MAX_FRAME_PIXELS
from chromalift.inference.geometry import DEFAULT_PROCESS_SIZE
from chromalift.io.names import one_line


@dataclass(frozen=True)
class Options:
    """How each photo and film of a run is made."""
    process_size: int | None = DEFAULT_PROCESS_SIZE   # longer side the local path sees at most (None: full size)
    quality: int = 95                 # JPEG and WebP quality
    max_pixels: float = 120e6         # photos larger than this are refused
    classify: bool = False            # each record gets the photo's 3 most likely scene classes
    show_class: bool = False          # ... and they are printed, one line per photo
    overwrite: bool = False           # replace outputs that exist
    hints: object = None              # inference.hints.Hints for a one-photo run
    prior: str = "shot"               # films: one global prior per shot, or per frame
    batch: int = 8                    # films: frames colorized together
    cut_threshold: float = CUT_THRESHOLD   # films: a mean change of L between frames that counts as a cut
    steady: float | None = None       # films: None = the default for the prior mode


@dataclass
class Tally:
    """What one process did (gathered on rank 0 under torchrun): counts, failures, one record per file."""
    done: int = 0
    count: int = 0
    skipped: int = 0
    videos: int = 0
    photos: int = 0
    failures: list = field(default_factory=list)
    records: list = field(default_factory=list)
    last: str | None = None   # the output of a one-file run
    interrupted: bool = False


def record(src, dst=None, *, error: str | None = None, classes: list | None = None, seconds: float | None = None) -> dict:
    """One --json record; the same keys for successes and failures."""
    return {"input": None if src is None else str(src), "output": None if dst is None else str(dst),
            "classes": classes or [], "seconds": seconds, "error": error}


def write_records(path: str | os.PathLike, records: list[dict]) -> None:
    from chromalift.io.atomic import atomic_write
    text = json.dumps(records, indent=1)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def colorize_files(inputs: list[str], output: str | None = None, *, colorizer=None, fmt: str | None = None,
                   options: Options = Options(), resume: bool = False, reference: str | None = None,
                   report: str | None = None, progress: bool = True) -> Tally:
    """Colorize photos, folders (recursively) and films into `output` (default: beside each input), as the
    `colorize` command does; the shipped model unless `colorizer` is given. Raises PlanError or LoadError
    (one line) before anything is written; per-file failures are in the returned Tally, and `report` (a
    path) receives its records as JSON."""
    from chromalift.batch.plan import plan_outputs
    from chromalift.inference.load import load_colorizer
    from chromalift.io.formats import is_video
    from chromalift.io.photos import read_photo

    plan = plan_outputs(inputs, output, fmt, overwrite=options.overwrite, report=report, resume=resume)
    if colorizer is None:
        colorizer = load_colorizer(one_photo=len(plan.jobs) == 1 and not is_video(plan.jobs[0].src),
                                   process_size=options.process_size, hints=options.hints is not None,
                                   films=any(is_video(j.src) for j in plan.jobs))
    ref = read_photo(reference, max_pixels=int(options.max_pixels)).rgb if reference else None
    tally = run_jobs(colorizer, plan.jobs, options, resume=resume, reference=ref, plan=plan, progress=progress)
    if report:
        write_records(report, tally.records)
    return tally


def run_jobs(colorizer, jobs: list, options: Options, *, resume: bool = False, reference=None, plan=None,
             progress: bool = True) -> Tally:
    """This process's films and photos (with `resume`, those whose output exists are counted as skipped);
    `plan` (on one process only) adds the plan's errors and notes. A Ctrl-C or SIGTERM ends it with
    tally.interrupted set."""
    from chromalift.io.formats import is_video

    todo = [j for j in jobs if not (resume and j.dst.exists())]
    tally = Tally(count=len(jobs), skipped=len(jobs) - len(todo))   # the plan's refusals are counted below
    if plan is not None:
        tally.failures, tally.count = list(plan.errors), tally.count + len(plan.errors)
        tally.records = [record(None, error=e) for e in plan.errors]
        for line in plan.errors:
            print(f"colorize: error: {one_line(line)}", file=sys.stderr)
        for line in plan.notes:
            print(f"colorize: {one_line(line)}", file=sys.stderr)
    prior = colorizer.prior(reference, scores=False)[0] if reference is not None else None
    videos = [job for job in todo if is_video(job.src)]
    photos = [job for job in todo if not is_video(job.src)]
    tally.videos, tally.photos = len(videos), len(photos)
    previous = _sigterm_as_interrupt()
    try:
        for job in videos:
            _colorize_film(colorizer, job, options, reference, tally)
        _colorize_photos(colorizer, photos, options, prior, tally, progress)
    except KeyboardInterrupt:
        tally.interrupted = True
        print("\ncolorize: interrupted; what was written is complete (films resume when run again)", file=sys.stderr)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if len(todo) == 1 and tally.done == 1:
        tally.last = str(todo[0].dst)
    return tally


def _colorize_film(colorizer, job, options: Options, reference, tally: Tally) -> None:
    from chromalift.film.run import VideoError, colorize_video
    try:
        result = colorize_video(colorizer, job.src, job.dst, prior_mode=options.prior, reference=reference,
                                process_size=options.process_size, batch=options.batch,
                                cut_threshold=options.cut_threshold,
                                steady=options.steady, overwrite=options.overwrite,
                                max_pixels=min(options.max_pixels, MAX_FRAME_PIXELS))
    except VideoError as e:
        tally.failures.append(str(e))
        tally.records.append(record(job.src, error=str(e)))
        print(f"colorize: error: {one_line(e)}", file=sys.stderr)
        return
    resumed = f", {result.resumed_shots} finished before" if result.resumed_shots else ""
    print(f"{one_line(job.src)}: {result.frames} frames, {len(result.shots)} shots{resumed}", file=sys.stderr)
    tally.done += 1
    tally.records.append(record(job.src, job.dst))


def _sigterm_as_interrupt():
    """SIGTERM (what schedulers and `kill` send) ends a run as Ctrl-C does: the summary so far, the --json
    report, exit 130. Returns the handler it replaced (None off the main thread, where none can be set)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum, frame):
        raise KeyboardInterrupt
    return signal.signal(signal.SIGTERM, interrupt)


class PhotoStages:
    """The three stages of one photo for pipeline.overlapped: read, colorize, write (metadata kept)."""

    def __init__(self, colorizer, options: Options, prior=None):
        self.colorizer, self.options, self.prior = colorizer, options, prior

    def read(self, job):
        from chromalift.io.photos import read_photo
        t0 = time.perf_counter()
        photo = read_photo(job.src, max_pixels=int(self.options.max_pixels))
        return photo, time.perf_counter() - t0

    def work(self, job, data):
        """-> (pixels, classes, seconds); classes only when asked, from the same global pass."""
        from chromalift.io.photos import DEEP_FORMATS
        photo, _ = data
        t0 = time.perf_counter()
        bits = 16 if photo.bits == 16 and job.dst.suffix.lower() in DEEP_FORMATS and photo.alpha is None else 8
        o, classes, c = self.options, [], self.colorizer
        hints = {"hints": o.hints} if o.hints else {}
        if o.classify or o.show_class:
            rgb, logits = c.colorize_and_classify(photo.pixels, prior=self.prior, process_size=o.process_size,
                                                  bits=bits, **hints)
            classes = c.top_classes(logits)
        else:
            rgb = c.colorize(photo.pixels, prior=self.prior, process_size=o.process_size, bits=bits, **hints)
        return rgb, classes, time.perf_counter() - t0

    def write(self, job, data, result) -> dict:
        """-> the photo's record for --json."""
        from chromalift.io.photos import write_photo
        (photo, read_s), (rgb, classes, work_s) = data, result
        t0 = time.perf_counter()
        write_photo(job.dst, rgb, photo.alpha, overwrite=self.options.overwrite, meta=photo.meta,
                    note=self.colorizer.note, quality=self.options.quality)
        seconds = read_s + work_s + time.perf_counter() - t0
        return record(job.src, job.dst, classes=[{"class": n, "p": round(p, 4)} for n, p in classes],
                      seconds=round(seconds, 3)) | {"_warnings": photo.warnings, "_classes": classes}


class _NoBar:
    def update(self) -> None:
        pass

    def write(self, line: str, file=None) -> None:
        print(line, file=file)

    def close(self) -> None:
        pass


def _failure_message(job, error: BaseException) -> str:
    """One line for a photo that failed; re-raises what is not one photo's failure (a bug)."""
    from chromalift.inference.hints import HintError
    from chromalift.io.photos import ImageError
    if isinstance(error, RuntimeError) and _out_of_memory(error):
        error = MemoryError(str(error))          # torch reports it as a RuntimeError: this photo's failure
    if not isinstance(error, (ImageError, MemoryError, HintError)):
        raise error
    if isinstance(error, ImageError):
        return str(error)                        # names the file already
    if isinstance(error, HintError):
        return f"{job.src}: {error}"
    return f"{job.src}: out of memory; try a smaller --process-size or --max-pixels"


def _colorize_photos(colorizer, photos: list, options: Options, prior, tally: Tally, progress: bool) -> None:
    """The photos through read -> colorize -> write, overlapped; one line per failure. Each photo written is
    counted in tally.done, a Ctrl-C or SIGTERM included."""
    from chromalift.batch.pipeline import overlapped

    if len(photos) < 2 or options.show_class or not progress:
        bar = _NoBar()          # and no tqdm import: one photo starts sooner
    else:
        from chromalift.progress import bar as progress_bar
        bar = progress_bar(total=len(photos), desc="colorize", unit="photo")

    outcomes: list[dict] = []   # each photo's record, in order; the tally takes them however the run ends

    def finished(job, rec, error):
        bar.update()
        if error is None:
            for line in rec.get("_warnings", ()):
                bar.write(f"colorize: warning: {one_line(line)}", file=sys.stderr)
            if options.show_class:
                print(f"{one_line(job.src)}: " + ", ".join(f"{name} {p:.0%}" for name, p in rec.get("_classes", ())))
            outcomes.append({k: v for k, v in rec.items() if not k.startswith("_")})
            return
        message = _failure_message(job, error)
        bar.write(f"colorize: error: {one_line(message)}", file=sys.stderr)
        outcomes.append(record(job.src, error=message))

    stages = PhotoStages(colorizer, options, prior)
    try:
        overlapped(photos, stages.read, stages.work, stages.write, finished)
    finally:
        bar.close()
        tally.records += outcomes
        tally.failures += [r["error"] for r in outcomes if r["error"]]
        tally.done += sum(1 for r in outcomes if not r["error"])


def _out_of_memory(error: RuntimeError) -> bool:
    text = str(error).lower()
    return "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text
