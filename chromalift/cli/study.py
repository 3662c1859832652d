"""`colorize study`: prepare, serve and report the paper's "natural or not?" user study."""
from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

from chromalift.cli.common import fail as _cli_fail
from chromalift.io.names import one_line


def _parser() -> argparse.ArgumentParser:
    from chromalift.inference.geometry import DEFAULT_PROCESS_SIZE

    p = argparse.ArgumentParser(prog="colorize study", description="The paper's user study on your own photos and "
                                "models: people judge one image at a time, natural or not.", epilog="""examples:
  colorize study kodak/ --model shipped --model grey --out study/    prepare (real + each source)
  colorize study --serve study/                                       the voting page, local only
  colorize study --report study/                                      the table and report.png""",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    action = p.add_mutually_exclusive_group()
    action.add_argument("--serve", metavar="STUDY", help="serve the study's voting page")
    action.add_argument("--report", metavar="STUDY", help="print the natural rate per source with 95%% intervals "
                        "and write a bar chart")
    p.add_argument("photos", nargs="*", help="colour photos or folders of them, to prepare a study from")
    p.add_argument("--model", action="append", metavar="SOURCE", help="a source to judge beside the real photos: "
                   "'shipped' (the shipped model), 'grey' (the grey baseline) or a weights file; repeat for "
                   "several (default: shipped)")
    p.add_argument("--out", help="the study folder to create (must not exist, or be empty)")
    p.add_argument("--seed", type=int, default=0, help="shuffles the images and names them")
    p.add_argument("--size", type=int, default=512, help="longest side of every image in the study")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality of every image in the study")
    p.add_argument("--limit", type=int, help="use at most this many photos, evenly spaced")
    p.add_argument("--process-size", type=int, default=DEFAULT_PROCESS_SIZE, help="as for colorize (0 = full size)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--host", default="127.0.0.1", help="--serve: address to listen on (default: this computer only)")
    p.add_argument("--port", type=int, default=7861, help="--serve: port")
    p.add_argument("--chart", help="--report: where to write the bar chart (default: STUDY/report.png)")
    return p


_fail = partial(_cli_fail, prog="colorize study")


def cmd_study(argv: list[str]) -> int:
    p = _parser()
    args = p.parse_args(argv)
    from chromalift.apps.study import StudyError
    try:
        if args.report:
            return _report(args)
        if args.serve:
            return _serve(args)
        if not args.photos or not args.out:
            p.error("give photos and --out to prepare a study, or --serve / --report STUDY")
        return _prepare(args)
    except StudyError as e:
        return _fail(str(e))


def _prepare(args) -> int:
    from chromalift.apps.study import GREY, REAL, SHIPPED, StudyError, photo_list, prepare_study, source_names
    from chromalift.inference.load import load_colorizer

    photos = photo_list(args.photos, args.limit)
    sources = []
    try:
        for name, spec in source_names(args.model or [SHIPPED]):
            model = None if spec in (REAL, GREY) else load_colorizer(None if spec == SHIPPED else spec, device=args.device)
            sources.append((name, model))
    except (ValueError, OSError) as e:
        raise StudyError(str(e)) from None
    skipped = []

    def skip(line: str) -> None:
        skipped.append(line)
        print(f"colorize study: skipped {one_line(line)}", file=sys.stderr)

    study = prepare_study(photos, args.out, sources, seed=args.seed, size=args.size, quality=args.quality,
                          process_size=args.process_size or None, on_skip=skip)
    print(f"{one_line(study.folder)}: {len(study.photos)} photos x {len(study.sources)} sources ({', '.join(study.sources)}) "
          f"= {len(study.items)} images; serve it with: colorize study --serve {study.folder}")
    return 1 if skipped else 0


def _serve(args) -> int:
    from chromalift.apps.study import load_study
    from chromalift.apps.study_server import serve
    from chromalift.cli.common import listen, missing_extra

    if message := missing_extra("colorize study --serve", "web", "fastapi", "uvicorn"):
        return _fail(message)
    error = listen(serve, load_study(args.serve), host=args.host, port=args.port)
    return _fail(error) if error else 0


def _report(args) -> int:
    from chromalift.apps.study import load_study
    from chromalift.apps.study_report import chart, markdown, tally

    study = load_study(args.report)
    rows, participants = tally(study)
    print(markdown(rows, participants))
    path = Path(args.chart) if args.chart else study.folder / "report.png"
    try:
        chart(rows, path)
    except OSError as e:
        return _fail(f"{path}: cannot write the chart ({e.strerror or e})")
    print(f"\nwrote {path}")
    return 0
