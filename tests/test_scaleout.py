"""An archive across processes: torchrun ranks (gloo on CPU) and scheduler shards, resumable."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import gradient_rgb
from PIL import Image

from chromalift.batch.shard import Shard
from chromalift.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def archive(tmp_path) -> Path:
    folder = tmp_path / "archive"
    for i in range(7):
        sub = folder / ("1950s" if i % 2 else "1960s")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(gradient_rgb(40 + 3 * i, 56, seed=i)).convert("L").save(sub / f"scan{i}.png")
    return folder


def _outputs(folder: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(folder)): np.asarray(Image.open(p)) for p in sorted(folder.rglob("*.png"))}


def _colorize(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chromalift", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)


@pytest.mark.slow
def test_torchrun_two_ranks_colorize_every_photo_once_as_one_process_does(archive, tmp_path, tiny_weights):
    assert main([str(archive), "-o", str(tmp_path / "one"), "--model", str(tiny_weights)]) == 0
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "chromalift", str(archive), "-o", str(tmp_path / "two"), "--model", str(tiny_weights),
                        "--json", str(tmp_path / "two.json")], capture_output=True, text=True, cwd=ROOT, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("colorized 7 of 7 photos by 2 processes") == 1, r.stdout   # one summary, from rank 0
    records = json.loads((tmp_path / "two.json").read_text())
    inputs = [rec["input"] for rec in records]
    assert sorted(inputs) == sorted(str(p) for p in archive.rglob("*.png")) and len(set(inputs)) == 7
    one, two = _outputs(tmp_path / "one"), _outputs(tmp_path / "two")
    assert one.keys() == two.keys() and len(one) == 7
    assert all(np.array_equal(one[k], two[k]) for k in one), "identical to the one-process run"
    assert not list((tmp_path / "two").rglob(".*partial*"))


def test_shards_split_the_archive_without_overlap_and_resume(archive, tmp_path, tiny_weights, capsys):
    out, report = tmp_path / "out", tmp_path / "run.json"
    for i in range(3):
        assert main([str(archive), "-o", str(out), "--model", str(tiny_weights), "--shard", f"{i}/3",
                     "--json", str(report)]) == 0
    shares = [[rec["input"] for rec in json.loads((tmp_path / f"run.shard-{i}-of-3.json").read_text())] for i in range(3)]
    assert [len(s) for s in shares] == [3, 2, 2] and len({x for s in shares for x in s}) == 7, "disjoint, complete"
    assert len(_outputs(out)) == 7
    assert "colorized 2 of 2 photos (shard 2 of 3)" in capsys.readouterr().out
    # a rerun of a shard (a requeued array task) skips what is there and redoes only what is missing
    victim = out / Path(shares[1][0]).relative_to(archive)
    victim.unlink()
    stale = victim.with_name(f".{victim.name}.partial-abcd1234.png")   # a write killed half-way
    stale.write_bytes(b"half a png")
    kept = {p: p.stat().st_mtime_ns for p in out.rglob("*.png") if not p.name.startswith(".")}
    assert main([str(archive), "-o", str(out), "--model", str(tiny_weights), "--shard", "1/3"]) == 0
    assert "colorized 1 of 2 photos (shard 1 of 3); 1 was done already (skipped)" in capsys.readouterr().out
    assert victim.exists() and not stale.exists()
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items()), "complete outputs are not touched"


def test_resume_in_one_process_and_its_refusals(archive, tmp_path, tiny_weights, capsys):
    out = tmp_path / "out"
    assert main([str(archive), "-o", str(out), "--model", str(tiny_weights)]) == 0
    next(iter(sorted(out.rglob("*.png")))).unlink()
    assert main([str(archive), "-o", str(out), "--model", str(tiny_weights), "--resume"]) == 0
    assert "colorized 1 of 7 photos; 6 were done already (skipped)" in capsys.readouterr().out.splitlines()[-1]
    assert main([str(archive), "-o", str(out), "--model", str(tiny_weights)]) == 1, "without --resume: refused"
    assert capsys.readouterr().out.count("already exists (use --overwrite to replace it)") == 7
    assert main([str(archive), "-o", str(out), "--resume", "--overwrite"]) == 1
    assert "choose one" in capsys.readouterr().err


@pytest.mark.parametrize("spec", ["3/3", "1/0", "a/b", "-1/2", "2"])
def test_bad_shards_are_one_line(spec, archive, tmp_path):
    r = _colorize(archive, "-o", tmp_path / "o", "--shard", spec)
    assert r.returncode in (1, 2) and "--shard" in r.stderr and "Traceback" not in r.stderr   # 2: argparse
    assert not (tmp_path / "o").exists()


def test_shard_takes_every_nth_and_reads_torchrun():
    assert Shard.parse("1/3").take(list(range(10))) == [1, 4, 7]
    s = Shard.parse(None, {"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0"})
    assert (s.index, s.count, s.launched) == (2, 4, True) and s.json_path("r.json") == "r.json"
    assert Shard.parse("0/2").json_path("out/r.json") == "out/r.shard-0-of-2.json"
    with pytest.raises(ValueError, match="under torchrun"):
        Shard.parse("0/2", {"WORLD_SIZE": "2", "RANK": "0"})
