"""benchmarks/ablation.py end to end on a few photos: every variant trains from scratch for the same
image-steps, is measured, lands in results.json and the table; a second call keeps the finished runs and their measurements."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import make_photo_folder

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_ablation_trains_each_variant_at_equal_image_steps_and_keeps_finished_runs(tmp_path):
    photos = make_photo_folder(tmp_path / "photos", per_class=6, size=40)
    out = tmp_path / "ablation"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "ablation.py"), "--data", str(photos), "--val", str(photos),
           "--eval", str(photos), "--out", str(out), "--steps", "2", "--batch-size", "4", "--width", "0.125",
           "--crop", "32", "--limit", "4", "--parallel", "2", "--variants", "mse", "classify", "no-global"]
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    rows = {r["name"]: r for r in json.loads((out / "results.json").read_text())}
    assert list(rows) == ["mse", "classify", "no-global"]
    assert {r["image_steps"] for r in rows.values()} == {8}                      # 2 steps of 4 photos each
    assert rows["classify"]["flags"] == ["--loss", "classify"]
    assert rows["no-global"]["top1"] is None and 0 <= rows["mse"]["top1"] <= 1   # no global network: no scenes
    args = json.loads((out / "classify" / "args.json").read_text())
    assert args["loss"] == "classify" and args["steps"] == 2 and args["seed"] == 0
    no_global = json.loads((out / "no-global" / "args.json").read_text())
    assert not no_global["global_features"] and no_global["alpha"] == 0
    for name in rows:
        assert f"| {name} |" in first.stdout
        assert (out / f"{name}.png").stat().st_size > 0                         # grey | ours | truth
    logs = {n: (out / f"{n}.log").stat().st_size for n in rows}
    grids = {n: (out / f"{n}.png").stat().st_mtime_ns for n in rows}
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "trained" not in again.stdout                                          # nothing retrained
    assert {n: (out / f"{n}.log").stat().st_size for n in rows} == logs
    assert {n: (out / f"{n}.png").stat().st_mtime_ns for n in rows} == grids      # nor measured again
    assert json.loads((out / "results.json").read_text()) == list(rows.values())
