"""A folder of camera-size photos through `colorize`, this tree against a baseline revision, in one run.

    python benchmarks/folder_speed.py [--baseline REV] [--photos 12] [--size 3000x2000] [--repeats 2]

Makes a folder of greyscale JPEGs (Kodak24 resized, or synthetic photos without it), then runs
`python -m chromalift FOLDER -o OUT` (`colorizer` before the rename) of the baseline (a `git archive` of REV, default: the revision
before the overlapped pipeline) and of this tree, alternately, each in a fresh process. Reports per
variant: photos/s (best of the repeats), CPU seconds split into user and system, and peak resident
memory (the process's own VmHWM, which it reports as it exits); then their ratio. It also checks that
the folder's outputs are identical to `colorize PHOTO --backend torch` (the folder's engine; one photo
alone would take the NumPy engine, within one level) run on each photo alone, and how far they are from
the baseline's.
Compare only the ratios: the machine is shared and noisy.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "5389b67"   # the last revision before the overlapped pipeline and the banded full-size work
KODAK = ROOT.parent / "shared" / "data" / "kodak24"


def make_photos(folder: Path, count: int, size: tuple[int, int]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted(KODAK.glob("*.png"))
    paths = []
    for i in range(count):
        if sources:
            img = Image.open(sources[i % len(sources)]).convert("RGB")
        else:
            rng = np.random.default_rng(i)
            img = Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).resize((768, 512))
        w, h = size if img.width >= img.height else size[::-1]
        path = folder / f"photo{i:03d}.jpg"
        img.resize((w, h), Image.BICUBIC).convert("L").save(path, quality=92)
        paths.append(path)
    return paths


def baseline_tree(rev: str, into: Path) -> Path:
    names = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", rev], check=True, capture_output=True,
                           text=True).stdout.split()
    package = next(p for p in ("chromalift", "colorizer") if p in names)   # the package's name before the rename
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev, package], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=__import__("io").BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def package_of(tree: Path) -> str:
    """The package a tree holds: chromalift, or colorizer in revisions from before the rename."""
    return "chromalift" if (tree / "chromalift").is_dir() else "colorizer"


# the child reports its own peak (VmHWM) as it exits: ru_maxrss would also carry what a forking parent held
PEAK = ("import atexit, os, re, runpy, sys\n"
        "def peak():\n"
        "    kb = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)\n"
        "    open(os.environ['PEAK_FILE'], 'w').write(kb)\n"
        "atexit.register(peak)\n"
        "hard_exit = os._exit\n"
        "os._exit = lambda code: (peak(), hard_exit(code))\n"     # the photo command's immediate exit
        "sys.argv[0] = sys.argv[1]\n"
        "runpy.run_module(sys.argv.pop(1), run_name='__main__', alter_sys=True)\n")


def run(tree: Path, args: list[str]) -> dict:
    """`python -m PACKAGE ARGS` with `tree` first on the path; wall, CPU and peak memory of that process."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PYTHONPATH=str(tree), PEAK_FILE=str(Path(tmp) / "peak"))
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", PEAK, package_of(tree), *args], env=env, cwd=tree,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if status != 0:
            raise SystemExit(f"{tree}: colorize {' '.join(args)} failed: {proc.stderr.read().decode()[-2000:]}")
        peak_mb = int((Path(tmp) / "peak").read_text()) / 1024
    return {"wall_s": wall, "user_s": usage.ru_utime, "system_s": usage.ru_stime, "peak_mb": peak_mb}


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", default=BASELINE, help="git revision to compare with")
    p.add_argument("--photos", type=int, default=12)
    p.add_argument("--size", default="3000x2000", help="WxH of the photos")
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    w, h = map(int, args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photos = make_photos(tmp / "in", args.photos, (w, h))
        trees = {"baseline": baseline_tree(args.baseline, tmp / "baseline"), "this tree": ROOT}
        results: dict[str, list[dict]] = {name: [] for name in trees}
        for r in range(args.repeats):
            for name, tree in trees.items():
                out = tmp / f"out-{name.replace(' ', '-')}"
                results[name].append(run(tree, [str(tmp / "in"), "-o", str(out), "--overwrite"]))
                print(f"repeat {r + 1} {name}: {results[name][-1]}", flush=True)
        rows = {}
        for name, runs in results.items():
            best = min(runs, key=lambda x: x["wall_s"])
            rows[name] = {"photos_per_s": args.photos / best["wall_s"], **best}
        singles = [pixels(run(ROOT, [str(ph), "-o", str(tmp / f"single-{ph.name}"), "--overwrite",
                                         "--backend", "torch"]) and
                          tmp / f"single-{ph.name}") for ph in photos[:2]]
        folder = [pixels(tmp / "out-this-tree" / ph.name) for ph in photos[:2]]
        base = [pixels(tmp / "out-baseline" / ph.name) for ph in photos]
        ours = [pixels(tmp / "out-this-tree" / ph.name) for ph in photos]
        summary = {
            "photos": args.photos, "size": args.size, "baseline": args.baseline, "cores": os.cpu_count(),
            "variants": rows,
            "ratio_photos_per_s": rows["this tree"]["photos_per_s"] / rows["baseline"]["photos_per_s"],
            "ratio_peak_memory": rows["this tree"]["peak_mb"] / rows["baseline"]["peak_mb"],
            "folder_identical_to_single_photo": all(np.array_equal(a, b) for a, b in zip(singles, folder)),
            "max_level_difference_from_baseline": int(max(np.abs(a - b).max() for a, b in zip(ours, base))),
            "share_of_pixels_differing_from_baseline": float(np.mean([(np.abs(a - b) > 0).mean() for a, b in zip(ours, base)])),
        }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
