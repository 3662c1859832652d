"""Writing files so that a crash or a full disk never leaves half a file in place."""
from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

TEMP_MARK = ".partial-"


def already_exists(path) -> str:
    """The one message for an output that is there already and may not be replaced unasked."""
    return f"{path}: already exists (use --overwrite to replace it)"


def temp_prefix(path: Path) -> str:
    return f".{path.name}{TEMP_MARK}"


def remove_stale_temps(path: Path) -> None:
    """Remove temporary files that a killed write of `path` left beside it (our own naming only). A live
    one, which another process is writing right now, holds a lock and is left alone."""
    for stale in path.parent.glob(temp_prefix(path) + "*"):
        if stale.is_file() and not stale.is_symlink() and len(stale.name) - len(temp_prefix(path)) - len(path.suffix) == 8:
            try:
                fd = os.open(stale, os.O_RDONLY)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                stale.unlink(missing_ok=True)
            except BlockingIOError:
                pass                                  # another run's write in progress
            finally:
                os.close(fd)


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_dir(prefix: str, parent: Path) -> Path:
    """A temporary folder (mkdtemp: a name no one else has, so only our own is ever removed) with the
    permissions a folder made by mkdir would have, not mkdtemp's 0700: it becomes an output (a cache, a
    study) that the user's group may read."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(tmp, 0o777 & ~umask())
    return tmp


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call write(tmp) on a temporary file beside `path`, then rename it into place.

    The temporary file is removed on any failure (Ctrl-C included); one left by a process killed outright
    is removed by the next write of the same path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=path.suffix, dir=path.parent)
    fcntl.flock(fd, fcntl.LOCK_EX)      # held until the end: marks the temp file as live for other runs
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~umask())   # mkstemp makes 0600 files; give the permissions a user expects
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        os.close(fd)
