"""Which inputs are films: by their extension, without importing a codec (PyAV loads only for films)."""
from __future__ import annotations

import os
from pathlib import Path

VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".wmv", ".flv", ".ogv",
                    ".ts", ".3gp"}


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def find_videos(folder: Path) -> list[Path]:
    """Video files under `folder`, recursively, in a stable order (hidden files and folders skipped)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_video(p)
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))
