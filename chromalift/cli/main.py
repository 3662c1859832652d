"""The `colorize` command: a dispatch table over one module per sub-command, each parsing its arguments,
calling the library and reporting. Every module here imports nothing heavy at the top, so `--help` is quick.

    colorize PHOTO|FOLDER|VIDEO ... [-o OUT]      colorize files and folders (the default command)
    colorize prepare SRC DST                     decode a photo folder once into a training cache
    colorize train --data D --out RUN            train (one process, or many under torchrun)
    colorize evaluate FOLDER                     quality metrics beside the grey baseline
    colorize export --onnx FILE                  export the model for deployment
    colorize weights SOURCE OUT.safetensors      weights from a checkpoint, or with other inference settings
    colorize web                                 a local page to colorize in the browser (extra: web)
    colorize pack SRC DST.npz --mib N            a compact training pack for a short GPU window
    colorize join PARTS/ OUT.safetensors         reassemble weights a GPU window left in parts
    colorize study PHOTOS --out STUDY            the paper's user study: prepare, --serve, --report
"""
from __future__ import annotations

import os
import sys

from chromalift.cli import evaluate, export, study, train, web, weights
from chromalift.cli.colorize import cmd_colorize

COMMANDS = {"prepare": train.cmd_prepare, "train": train.cmd_train, "evaluate": evaluate.cmd_evaluate,
            "export": export.cmd_export, "weights": weights.cmd_weights, "web": web.cmd_web, "pack": train.cmd_pack,
            "join": train.cmd_join, "study": study.cmd_study}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv in (["--version"], ["-V"]):
        from importlib.metadata import PackageNotFoundError, version
        try:
            print(f"colorize {version('chromalift')}")
        except PackageNotFoundError:
            print("colorize (not installed)")
        return 0
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    return cmd_colorize(argv)


def run() -> None:
    """The `colorize` command: main(), then, after the photo and film command, an immediate exit.

    Python's own shutdown after torch has been imported takes 0.5-0.9 s on a 2-core machine (measured with
    benchmarks/startup.py), a third of a one-photo run, and has nothing left to do here: every output is
    written and closed, every thread joined. The other subcommands (training with its workers, the web
    server) keep the normal shutdown."""
    argv = sys.argv[1:]
    code = main(argv)
    if argv and argv[0] in COMMANDS:
        sys.exit(code)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
