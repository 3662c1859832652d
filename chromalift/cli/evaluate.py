"""`colorize evaluate FOLDER...`: quality metrics beside the grey baseline, over the library's evaluation."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chromalift.cli.common import fail, missing_extra
from chromalift.io.names import one_line


def cmd_evaluate(argv: list[str]) -> int:
    from chromalift.inference.geometry import DEFAULT_PROCESS_SIZE

    p = argparse.ArgumentParser(prog="colorize evaluate", description="Metrics on folders of colour photos, "
                                "beside the grey baseline: PSNR, SSIM, colourfulness, AuC, scene top-1/top-5.")
    p.add_argument("folders", nargs="+", help="folders of colour photos (class subfolders enable scene accuracy)")
    p.add_argument("--model", help="weights (.safetensors); default: the shipped model")
    p.add_argument("--out", default="evaluation", help="folder for results.json and the comparison grids")
    p.add_argument("--limit", type=int, help="evaluate an evenly spaced sample of at most this many photos per folder")
    p.add_argument("--process-size", type=int, default=DEFAULT_PROCESS_SIZE, help="as for colorize (0 = full size)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    args = p.parse_args(argv)
    if message := missing_extra("colorize evaluate", "eval", "skimage"):
        return fail(message)
    from chromalift.evaluation.evaluate import evaluate, markdown_table, save_json
    from chromalift.inference.load import load_colorizer
    from chromalift.io.photos import ImageError
    out = Path(args.out)
    for folder in args.folders:       # results inside an evaluated folder would be read back as photos next time
        if out.resolve().is_relative_to(Path(folder).resolve()):
            return fail(f"--out {out} lies inside the evaluated folder {folder}: choose a folder outside it")
    try:
        colorizer = load_colorizer(args.model, device=args.device)
        out.mkdir(parents=True, exist_ok=True)
        results, names = [], []
        for folder in args.folders:
            name = Path(folder).resolve().name
            names.append(name if name not in names else f"{name}-{len(names) + 1}")   # A/set and B/set: two grids
            grid = out / f"grid-{names[-1]}.png"
            results.append(evaluate(colorizer, folder, limit=args.limit, process_size=args.process_size or None,
                                    grid=grid))
    except (ImageError, FileNotFoundError, ValueError, OSError) as e:
        return fail(str(e))
    print(markdown_table(results))
    save_json(results, out / "results.json")
    print(f"\nwrote {one_line(out / 'results.json')} and comparison grids (grey | ours | truth) in {one_line(out)}/")
    failed = [line for r in results for line in r["failed"]]
    for line in failed:
        print(f"colorize evaluate: skipped {one_line(line)}", file=sys.stderr)
    return 1 if failed else 0
