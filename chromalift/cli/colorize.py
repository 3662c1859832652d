"""`colorize PHOTO|FOLDER|VIDEO ... [-o OUT]`: the default command: arguments in, the library's plan, model
and run (batch/run.py), one summary out; Ctrl-C or SIGTERM: the summary so far and exit 130."""
from __future__ import annotations

import argparse

from chromalift.batch.run import Options, Tally, write_records
from chromalift.cli.common import SUBCOMMANDS, fail, missing_extra, number
from chromalift.io.names import one_line


def _colorize_parser() -> argparse.ArgumentParser:
    from chromalift.film.settings import CUT_THRESHOLD, STEADY
    from chromalift.inference.geometry import DEFAULT_PROCESS_SIZE

    p = argparse.ArgumentParser(
        prog="colorize", description="Colorize black-and-white photos (files or folders, recursively) and films.",
        epilog="Other commands: " + ", ".join(f"colorize {c} -h" for c in SUBCOMMANDS))
    p.add_argument("inputs", nargs="+", help="photos, folders of photos, and/or videos (.mp4, .mkv, .mov, ...)")
    p.add_argument("-o", "--output", help="output file (one input photo) or folder; default: PHOTO_color.EXT "
                                          "beside each photo, FOLDER_color/ for a folder")
    p.add_argument("--model", help="weights (.safetensors) to use instead of the shipped model")
    p.add_argument("--reference", help="take the global features (the colour mood) from this photo: the paper's style transfer")
    p.add_argument("--process-size", type=number(int, 0, 16384), default=DEFAULT_PROCESS_SIZE,
                   help="longer side the local path sees at most (0 = the photo's own size); colour is "
                        "added back at full resolution")
    p.add_argument("--format", help="output extension for folders and multiple photos; keep (the default) = "
                                    "each input's own")
    p.add_argument("--quality", type=int, default=95, help="JPEG and WebP quality, 1-100 (default 95)")
    p.add_argument("--hint", action="append", default=[], metavar="X,Y,#RRGGBB",
                   help="a colour hint for one photo: this colour at pixel X,Y (from the top left of the photo as "
                        "shown), spread over its region along the photo's edges; repeat for more")
    p.add_argument("--hints", metavar="STROKES.png", help="colour strokes for one photo: an RGBA image of the photo's "
                   "size whose opaque pixels are hints (paint on a transparent layer)")
    p.add_argument("--show-class", action="store_true", help="print the 3 most likely scene classes of each photo")
    p.add_argument("--json", metavar="FILE", help="write a summary per photo (input, output, classes, seconds, "
                                                   "error) to FILE")
    p.add_argument("--overwrite", action="store_true", help="replace output files that already exist")
    p.add_argument("--resume", action="store_true", help="skip outputs that already exist (complete: every output is "
                   "written atomically) and do the rest; implied by --shard and torchrun")
    p.add_argument("--shard", metavar="I/N", help="do the I-th of N equal shares of the inputs (0 <= I < N), e.g. "
                   "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT; --json FILE becomes FILE.shard-I-of-N.json. "
                   "Under torchrun the ranks share the work by themselves")
    p.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    p.add_argument("--max-pixels", type=number(float, 1, 1e10), default=120e6, help="refuse photos larger than this many pixels")
    p.add_argument("--backend", default="auto", choices=["auto", "numpy", "onnx", "torch"],
                   help="inference engine: auto = NumPy for one photo on the CPU with the shipped model and a "
                        "process size up to 1024 (no torch import: the fastest start), else fused PyTorch (the "
                        "fastest network); numpy = always NumPy (photos, CPU); onnx = ONNX Runtime")
    v = p.add_argument_group("videos")
    v.add_argument("--prior", choices=["shot", "frame"], default="shot",
                   help="shot: one global prior per shot, the mean of its frames' (steady colours); "
                        "frame: each frame its own, as for photos (flickers more)")
    v.add_argument("--cut-threshold", type=number(float, 0, 100), default=CUT_THRESHOLD,
                   help="mean change of L (0-100) between frames that counts as a shot cut")
    v.add_argument("--steady", type=number(float, 0, 1), default=None,
                   help=f"0-1: where luminance did not change since the last frame, lean on its colour this much "
                        f"(calms colour noise in still areas; default {STEADY} with --prior shot, 0 with frame)")
    v.add_argument("--batch", type=number(int, 1, 1024), default=8, help="frames colorized together")
    return p


def cmd_colorize(argv: list[str]) -> int:
    args = _colorize_parser().parse_args(argv)     # --help answers here, before torch is imported
    from chromalift.batch.plan import PlanError, plan_outputs
    from chromalift.batch.run import run_jobs
    from chromalift.batch.shard import Shard
    from chromalift.inference.load import load_colorizer
    from chromalift.io.formats import is_video
    from chromalift.io.photos import ImageError, read_photo

    fmt = None if args.format in (None, "keep") else args.format
    try:
        if not 1 <= args.quality <= 100:
            raise ValueError(f"--quality {args.quality}: choose 1-100")
        if args.resume and args.overwrite:
            raise ValueError("--resume keeps the outputs that exist and --overwrite replaces them: choose one")
        shard = Shard.parse(args.shard)
        resume = args.resume or shard.split
        plan = plan_outputs(args.inputs, args.output, fmt, overwrite=args.overwrite, report=args.json, resume=resume)
        hints = _read_hints(args, plan)
        one_photo = len(plan.jobs) == 1 and not is_video(plan.jobs[0].src) and not shard.launched
        device = shard.device(args.device) if shard.launched else args.device   # torch only where launched
        colorizer = load_colorizer(args.model, device=device, backend=args.backend,
                                   one_photo=one_photo, process_size=args.process_size,
                                   films=any(is_video(j.src) for j in plan.jobs), hints=hints is not None)
        reference = read_photo(args.reference, max_pixels=int(args.max_pixels)).rgb if args.reference else None
    except (PlanError, ImageError, ValueError) as e:
        return fail(str(e))
    options = Options(process_size=args.process_size or None, quality=args.quality, max_pixels=args.max_pixels,
                      classify=bool(args.json), show_class=args.show_class, overwrite=args.overwrite, hints=hints,
                      prior=args.prior, batch=args.batch, cut_threshold=args.cut_threshold, steady=args.steady)
    shard.start()
    try:
        tally = run_jobs(colorizer, shard.take(plan.jobs), options, resume=resume, reference=reference,
                         plan=plan if shard.index == 0 else None)
        tallies = [tally] if tally.interrupted else shard.gather(tally)
        reported = True
        if not shard.launched or shard.index == 0 or tally.interrupted:
            reported = _report(tallies, args.json and shard.json_path(args.json), shard)
    finally:
        shard.stop()
    failed = any(t.failures for t in tallies) or not reported
    return 130 if tally.interrupted else 1 if failed else 0


def _read_hints(args, plan):
    """The --hint points and --hints strokes (None without any); ValueError with one line for what is wrong."""
    if not args.hint and not args.hints:
        return None
    from chromalift.inference.hints import Hints, parse_point
    from chromalift.io.formats import is_video
    if len(plan.jobs) != 1 or is_video(plan.jobs[0].src):
        raise ValueError("--hint and --hints are in one photo's pixels: give exactly one photo")
    if message := missing_extra("colorize --hint", "hints", "scipy"):
        raise ValueError(message)
    strokes = None
    if args.hints:
        from chromalift.io.photos import ImageError, read_photo
        try:
            photo = read_photo(args.hints, max_pixels=int(args.max_pixels))
        except ImageError as e:
            raise ValueError(f"--hints: {e}") from None
        if photo.alpha is None:
            raise ValueError(f"--hints {args.hints}: has no transparency; paint the strokes on a transparent layer (RGBA PNG)")
        import numpy as np
        strokes = np.dstack([photo.u8, photo.alpha])
    return Hints(tuple(parse_point(t) for t in args.hint), strokes)


def _report(tallies: list[Tally], json_path: str | None, shard) -> bool:
    """The one summary (and --json file) of a run, from every process's tally; False if the report could
    not be written."""
    import sys
    t = Tally(**{k: sum(getattr(x, k) for x in tallies) for k in ("done", "count", "skipped", "videos", "photos")},
              failures=[f for x in tallies for f in x.failures], records=[r for x in tallies for r in x.records],
              interrupted=any(x.interrupted for x in tallies))
    json_error = None
    if json_path:
        try:
            write_records(json_path, t.records)
        except OSError as e:   # a full disk or an unwritable folder: the summary still comes, the file is named
            json_error = f"{json_path}: cannot write the --json report ({e.strerror or e})"
    if t.count == 1 and t.done == 1 and not t.interrupted and len(tallies) == 1:
        print(one_line(tallies[0].last))
    elif t.count > 1 or t.interrupted or t.skipped:
        noun = "files" if t.videos and t.photos else "videos" if t.videos else "photos"
        where = f" by {len(tallies)} processes" if len(tallies) > 1 else f" ({shard})" if shard.split else ""
        print(f"colorized {t.done} of {t.count} {noun}{where}" + (" before the interruption" if t.interrupted else "")
              + (f"; {t.skipped} {'was' if t.skipped == 1 else 'were'} done already (skipped)" if t.skipped else "")
              + (f"; {len(t.failures)} failed:" if t.failures else ""))
        for f in t.failures:
            print(f"  {one_line(f)}")
    if json_error:
        print(f"colorize: error: {one_line(json_error)}", file=sys.stderr)
    return json_error is None
