"""What every sub-command shares: the list of commands, range-checked numbers, one-line errors."""
from __future__ import annotations

import argparse
import sys

from chromalift.io.names import one_line

SUBCOMMANDS = ("prepare", "train", "evaluate", "export", "weights", "web", "pack", "join", "study")


def number(kind, lo: float, hi: float):
    """An argparse type: a finite number of `kind` in [lo, hi]: nan, inf and out-of-range values are refused
    in argparse's one error line instead of failing later."""
    g = lambda v: f"{v:g}" if kind is float else str(v)

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if kind is int else 'a number'}") from None
        if not lo <= value <= hi:          # nan fails every comparison; inf is beyond any bound
            raise argparse.ArgumentTypeError(f"{text}: choose a number from {g(lo)} to {g(hi)}")
        return value
    return parse


def fail(message: str, code: int = 1, prog: str = "colorize") -> int:
    print(f"{prog}: error: {one_line(message)}", file=sys.stderr)
    return code


def missing_extra(command: str, extra: str, *modules: str) -> str | None:
    """The one-line message when an optional extra that `command` needs is not installed, else None."""
    from importlib.util import find_spec
    missing = [m for m in modules if find_spec(m) is None]
    return (f"{command} needs the {extra} extra ({missing[0]} is missing): pip install 'chromalift[{extra}]'"
            if missing else None)


def listen(serve, *args, host: str, port: int) -> str | None:
    """Run a local server until Ctrl-C; -> the one-line error when its port cannot be opened, else None."""
    try:
        serve(*args, host, port)
    except KeyboardInterrupt:
        pass
    except OSError as e:
        return f"cannot listen on {host}:{port} ({e.strerror or e})"
    return None
