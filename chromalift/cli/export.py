"""`colorize export --onnx FOLDER`: the model as ONNX graphs for deployment."""
from __future__ import annotations

import argparse
from pathlib import Path

from chromalift.cli.common import fail, missing_extra
from chromalift.io.atomic import already_exists
from chromalift.io.names import one_line


def cmd_export(argv: list[str]) -> int:
    from chromalift.inference.colorizer import DEFAULT_WEIGHTS
    from chromalift.inference.engines import export_onnx
    from chromalift.model.weights import CheckpointError, load_weights

    p = argparse.ArgumentParser(prog="colorize export", description="Export the model for deployment.")
    p.add_argument("--onnx", required=True, help="folder to write global.onnx and local.onnx into "
                   "(local.onnx takes any height and width, multiples of 8)")
    p.add_argument("--model", help="weights (.safetensors); default: the shipped model")
    p.add_argument("--overwrite", action="store_true", help="replace global.onnx and local.onnx if there")
    args = p.parse_args(argv)
    if message := missing_extra("colorize export", "onnx", "onnx"):
        return fail(message)
    existing = [Path(args.onnx) / n for n in ("global.onnx", "local.onnx") if (Path(args.onnx) / n).exists()]
    if existing and not args.overwrite:
        return fail(already_exists(existing[0]))
    try:
        model = load_weights(args.model or DEFAULT_WEIGHTS)[0]
        glob, local = export_onnx(model, args.onnx)
    except (CheckpointError, OSError) as e:
        return fail(str(e))
    print(f"wrote {one_line(glob)} and {one_line(local)}")
    return 0
