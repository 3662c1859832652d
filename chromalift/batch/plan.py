"""Planning every output path of a run before anything is written.

`plan_outputs` pairs each input photo or film with its output and settles every conflict up front:
an output that is an input is refused, two inputs that map to one output get distinct names (said in
one line), a folder's own output tree inside it is never read back as input, an existing output is
refused without --overwrite (or kept, to be skipped, with --resume), and an output folder that cannot
be written is refused before any work. Nothing is written here; the run then only writes the paths this
plan holds.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from chromalift.io.atomic import already_exists
from chromalift.io.photos import IMAGE_EXTENSIONS, find_images


class PlanError(Exception):
    """A run that cannot start as asked; str() names the path and the cause."""


@dataclass(frozen=True)
class Job:
    src: Path
    dst: Path


@dataclass
class Plan:
    jobs: list[Job] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)   # inputs refused, one line each
    notes: list[str] = field(default_factory=list)    # outputs renamed to keep them apart, one line each


def _media_extensions() -> set[str]:
    from chromalift.io.formats import VIDEO_EXTENSIONS
    return IMAGE_EXTENSIONS | VIDEO_EXTENSIONS


def _is_video(path: Path) -> bool:
    from chromalift.io.formats import is_video
    return is_video(path)


def _candidates(inputs: list[Path], out: Path | None, fmt: str | None) -> tuple[list[Job], list[str]]:
    """Every (input, output) pair as the naming rules give it, before conflicts are settled."""
    from chromalift.io.formats import find_videos

    jobs, errors = [], []
    single_file = len(inputs) == 1 and not inputs[0].is_dir()
    out_is_file = out is not None and single_file and out.suffix != "" and not out.is_dir()
    ext = lambda p: ("." + fmt.lstrip(".")) if fmt and not _is_video(p) else p.suffix   # --format: photos only
    for item in inputs:
        if item.is_dir():
            base = (out / item.name if len(inputs) > 1 else out) if out else item.with_name(item.name + "_color")
            own = base.resolve()
            # the run's own output tree inside the input folder is never read back as input
            inside = own != item.resolve() and own.is_relative_to(item.resolve())
            found = [p for p in find_images(item) + find_videos(item)
                     if not (inside and p.resolve().is_relative_to(own))]
            if not found:
                errors.append(f"{item}: no images or videos found in this folder")
            jobs += [Job(p, (base / p.relative_to(item)).with_suffix(ext(p))) for p in sorted(found)]
        elif out_is_file:
            jobs.append(Job(item, out))
        elif out is not None:
            jobs.append(Job(item, (out / item.name).with_suffix(ext(item))))
        else:
            jobs.append(Job(item, item.with_name(f"{item.stem}_color{ext(item)}")))
    return jobs, errors


def _distinct(dst: Path, src: Path, taken: set[Path]) -> Path:
    """A name beside `dst` that says which input it came from: photo.jpg -> photo-jpg.png (then -2, -3...)."""
    stem = f"{dst.stem}-{src.suffix.lstrip('.').lower() or 'file'}"
    candidate, n = dst.with_name(stem + dst.suffix), 2
    while candidate.resolve() in taken:
        candidate, n = dst.with_name(f"{stem}-{n}{dst.suffix}"), n + 1
    return candidate


def _writable(dst: Path) -> bool:
    """Whether `dst` could be created: its nearest existing ancestor is a writable folder."""
    parent = dst.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)


def plan_outputs(inputs: list[str], output: str | None = None, fmt: str | None = None, *,
                 overwrite: bool = False, report: str | None = None, resume: bool = False) -> Plan:
    """Pair every input with an output that is safe to write; raises PlanError when the run cannot start.
    `report` (the --json file) must not be an input or an output either. With `resume`, an existing
    output stays in the plan (complete, as every output is written atomically: the run skips it), so that
    every process of a sharded run splits the same list however far the others have got."""
    known = _media_extensions()
    if fmt is not None and "." + fmt.lstrip(".").lower() not in IMAGE_EXTENSIONS:
        raise PlanError(f"--format {fmt}: unknown photo format; choose one of {', '.join(sorted(IMAGE_EXTENSIONS))}")
    paths = [Path(p) for p in inputs]
    out = Path(output) if output else None
    if (out is not None and len(paths) == 1 and not paths[0].is_dir() and out.suffix
            and out.suffix.lower() not in known and not out.is_dir()):
        raise PlanError(f"{out}: unknown output format {out.suffix}; name a photo or film file "
                        f"({', '.join(sorted(known))}) or a folder")
    missing = [f"{p}: no such file or folder" for p in paths if not p.exists()]
    jobs, errors = _candidates([p for p in paths if p.exists()], out, fmt)
    plan = Plan(errors=missing + errors)
    sources = {job.src.resolve() for job in jobs}
    taken: set[Path] = set()
    for job in jobs:
        dst = job.dst
        if dst.suffix.lower() not in IMAGE_EXTENSIONS and not _is_video(job.src):   # read (AVIF, HEIC), not written
            dst = dst.with_suffix(".png")
            plan.notes.append(f"{job.src}: {job.src.suffix} photos are read but not written, so this writes {dst}")
        if dst.resolve() in sources:
            if dst.resolve() == job.src.resolve() and out is not None and out.resolve() == dst.resolve():
                plan.errors.append(f"{dst}: is the input itself; choose another output")
                continue
            renamed = _distinct(dst, job.src, taken | sources)
            plan.notes.append(f"{job.src}: {dst} is an input, so this writes {renamed}")
            dst = renamed
        elif dst.resolve() in taken:
            renamed = _distinct(dst, job.src, taken | sources)
            plan.notes.append(f"{job.src}: {dst} is the output of another input, so this writes {renamed}")
            dst = renamed
        taken.add(dst.resolve())      # this input's name, whether or not it can be written now
        if dst.exists() and not overwrite and not resume and not _is_video(job.src):
            plan.errors.append(already_exists(dst))    # films resume into an existing output's work folder
            continue
        if dst.is_dir():
            plan.errors.append(f"{dst}: is a folder; the output of {job.src} cannot replace it")
            continue
        if not _writable(dst):
            plan.errors.append(f"{dst}: cannot write there (permission denied or not a folder)")
            continue
        plan.jobs.append(Job(job.src, dst))
    if report is not None:
        r = Path(report).resolve()
        if r in sources or r in taken or r.is_dir() or not _writable(Path(report)):
            raise PlanError(f"{report}: cannot be the --json summary (an input, an output, a folder, or not writable)")
    return plan
