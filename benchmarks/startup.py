"""Cold start of `colorize PHOTO`: this tree against a baseline revision, and where the time goes.

    python benchmarks/startup.py [--baseline REV] [--repeats 5]

Runs `python -X importtime -m chromalift PHOTO -o OUT` in fresh processes, alternating the baseline (a
`git archive` of REV) and this tree; reports the median wall time of each, and for the fastest run of
each the cumulative import time of every top-level module (ours and third-party), so that what a
change saved is visible. Compare only within one run: the machine is shared and noisy.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from folder_speed import BASELINE, ROOT, baseline_tree, make_photos, package_of


def cold(tree: Path, photo: Path, out: Path) -> tuple[float, dict[str, float]]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", package_of(tree), str(photo), "-o", str(out), "--overwrite"],
                       env=env, cwd=tree, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode:
        raise SystemExit(r.stderr[-2000:])
    modules = {}
    for line in r.stderr.splitlines():   # "import time: self | cumulative | name", top level has one space
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if m and not m[2].startswith(" "):
            modules[m[2]] = int(m[1]) / 1e6
    return wall, modules


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", default=BASELINE)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photo = make_photos(tmp / "in", 1, (1024, 768))[0]
        trees = {"baseline": baseline_tree(args.baseline, tmp / "baseline"), "this tree": ROOT}
        runs: dict[str, list] = {name: [] for name in trees}
        for _ in range(args.repeats):
            for name, tree in trees.items():
                runs[name].append(cold(tree, photo, tmp / "out.jpg"))
    summary = {"baseline": args.baseline, "photo": "1024x768 JPEG"}
    for name, results in runs.items():
        wall, modules = min(results, key=lambda r: r[0])
        top = dict(sorted(((k, round(v, 3)) for k, v in modules.items() if v >= 0.005), key=lambda kv: -kv[1]))
        summary[name] = {"median_wall_s": round(statistics.median(r[0] for r in results), 3),
                         "best_wall_s": round(wall, 3), "imports_s": round(sum(modules.values()), 3),
                         "top_level_imports_s": top}
    summary["ratio_median_wall"] = summary["this tree"]["median_wall_s"] / summary["baseline"]["median_wall_s"]
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
