"""Progress bars that suit where they are written: tqdm's bar on a terminal; off one (a log file, a pipe,
a scheduler's output), a plain line every few seconds instead of thousands of carriage-return updates."""
from __future__ import annotations

import sys

from tqdm import tqdm

LOG_INTERVAL_S = 10.0


class _Lines:
    """A text stream for tqdm that turns each redraw into one line of its own."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def bar(iterable=None, **kwargs) -> tqdm:
    """tqdm(iterable, **kwargs), with one line every LOG_INTERVAL_S seconds when stderr is not a terminal."""
    stream = kwargs.pop("file", None) or sys.stderr
    if not getattr(stream, "isatty", lambda: False)():
        kwargs = {"mininterval": LOG_INTERVAL_S, "maxinterval": LOG_INTERVAL_S * 6, "ncols": 100, "ascii": True} | kwargs
        stream = _Lines(stream)
    return tqdm(iterable, file=stream, **kwargs)
