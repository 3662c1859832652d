"""A film's work folder (`.NAME.parts/` beside the output): made, locked and cleared by colorize alone.

Nothing is deleted that a run cannot prove it made: the folder carries a marker file written when it
was made, and only files of the names colorize writes there are removed (the plan, the priors, the shot
segments and their temp files). A folder of that name without the marker, a symbolic link, or a file is
refused with one line. The marker is also a lock (flock), held for the whole run, so two runs writing one
film cannot wipe each other's work.
"""
from __future__ import annotations

import fcntl
import re
from pathlib import Path

from chromalift.film.streams import VideoError

MARKER = ".colorize-work"
OURS = re.compile(r"^((\.(plan\.json|priors\.npy)\.partial-\w{8}\.(json|npy))|plan\.json|priors\.npy|"
                  r"(\.tmp-)?shot-\d{5}\.[a-z0-9]+|\.tmp-joined\.[a-z0-9]+)$")


def work_folder(dst: Path) -> Path:
    return dst.with_name(f".{dst.name}.parts")


def claim(work: Path, dst: Path):
    """The work folder, made or proved ours, and locked for this run -> the lock (close it to release)."""
    if work.is_symlink() or (work.exists() and not work.is_dir()):
        raise VideoError(f"{work}: is in the way of {dst.name}'s work folder and was not made by colorize; move it away")
    if work.exists() and not (work / MARKER).is_file():
        raise VideoError(f"{work}: a folder colorize did not make is where {dst.name}'s work goes; move it away")
    work.mkdir(parents=True, exist_ok=True)
    lock = open(work / MARKER, "a")   # noqa: SIM115 (held open for the run: it is the lock)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise VideoError(f"{dst}: another colorize run is writing this film now; wait for it to finish") from None
    return lock


def clear(work: Path) -> None:
    """Remove our files from the work folder (the marker stays: the folder is still ours and locked)."""
    for entry in work.iterdir():
        if OURS.match(entry.name) and entry.is_file() and not entry.is_symlink():
            entry.unlink()


def release(work: Path, lock) -> None:
    """However a run ends: the lock goes, and a work folder that holds nothing but the marker (a finished
    run's, cleared; or one that failed before its plan was written) goes with it; one with work in it stays
    for the next run, and one with anything that is not ours stays as it is."""
    lock.close()
    try:
        if work.is_dir() and not work.is_symlink() and [e.name for e in work.iterdir()] == [MARKER]:
            (work / MARKER).unlink()
            work.rmdir()
    except OSError:
        pass
