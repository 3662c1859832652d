"""Hostile input, round 2: diverged weights, out-of-range options, signals, full disks, out of memory,
forged study votes, CSV injection and cross-site requests. Each test reproduces the attack from outside."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import gradient_rgb
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from chromalift.cli.main import main

ROOT = Path(__file__).resolve().parent.parent


def _photo(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(gradient_rgb(24, 32, seed)).save(path)
    return path


def _poisoned(weights: Path, out: Path, everywhere: bool) -> Path:
    """The weights with a NaN in one tensor, or NaN everywhere (what a diverged run exports)."""
    with safe_open(str(weights), "pt") as f:
        meta = f.metadata()
    state = load_file(str(weights))
    for i, (k, v) in enumerate(sorted(state.items())):
        if v.is_floating_point() and (everywhere or i == 3):
            state[k] = torch.full_like(v, float("nan"))
    save_file(state, str(out), metadata=meta)
    return out


@pytest.mark.parametrize("everywhere", [False, True])
@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_weights_with_nan_are_refused_in_one_line(tmp_path, tiny_weights, capsys, everywhere, backend):
    bad = _poisoned(tiny_weights, tmp_path / "diverged.safetensors", everywhere)
    src = _photo(tmp_path / "a.png")
    assert main([str(src), "--model", str(bad), "--backend", backend, "-o", str(tmp_path / "out.png")]) == 1
    err = capsys.readouterr().err
    assert "NaN or infinite" in err and "diverged.safetensors" in err and "Traceback" not in err
    assert not (tmp_path / "out.png").exists()
    assert main(["weights", str(bad), str(tmp_path / "copy.safetensors")]) == 1
    assert "NaN or infinite" in capsys.readouterr().err and not (tmp_path / "copy.safetensors").exists()


def test_a_diverged_training_run_stops_with_one_line(tmp_path, monkeypatch, capsys):
    from helpers import make_photo_folder

    import chromalift.train.loop as train_module
    from chromalift.train.data.cache import prepare
    prepare(make_photo_folder(tmp_path / "photos", per_class=4), tmp_path / "cache", size=40, progress=False, workers=1)
    real = train_module.compute_loss
    calls = []

    def nan_after_two(*a, **k):
        out = real(*a, **k)
        calls.append(1)
        return (out[0] * float("nan"), *out[1:]) if len(calls) > 2 else out
    monkeypatch.setattr(train_module, "compute_loss", nan_after_two)
    rc = main(["train", "--data", str(tmp_path / "cache"), "--out", str(tmp_path / "run"), "--width", "0.125",
               "--crop", "32", "--batch-size", "8", "--steps", "8", "--ckpt-every", "2", "--log-every", "2",
               "--workers", "0", "--threads", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "diverged" in err and "step 4" in err and "Traceback" not in err
    from chromalift.train.checkpoint import load_checkpoint
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state["step"] == 2 and all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


@pytest.mark.slow
@pytest.mark.parametrize("args, says", [
    (["--steady", "5"], "--steady: 5: choose a number from 0 to 1"), (["--steady", "-1"], "--steady"),
    (["--steady", "nan"], "--steady: nan"), (["--steady", "inf"], "--steady: inf"),
    (["--max-pixels", "nan"], "--max-pixels: nan"), (["--cut-threshold", "-3"], "--cut-threshold"),
    (["--process-size", "-8"], "--process-size"), (["--batch", "0"], "--batch"),
])
def test_numeric_options_are_range_checked(tmp_path, args, says):
    src = _photo(tmp_path / "a.png")
    proc = subprocess.run([sys.executable, "-m", "chromalift", str(src), *args], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "a_color.png").exists()


@pytest.mark.slow
@pytest.mark.parametrize("args, says", [(["--port", "99999"], "--port: 99999"), (["--max-upload-mb", "-1"], "--max-upload-mb"),
                                        (["--max-pixels", "nan"], "--max-pixels")])
def test_web_options_are_range_checked(args, says):
    proc = subprocess.run([sys.executable, "-m", "chromalift", "web", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_sigterm_in_a_folder_run_writes_the_summary_and_the_report(tmp_path, tiny_weights):
    for i in range(40):
        _photo(tmp_path / "in" / f"{i:02d}.png", i)
    report = tmp_path / "report.json"
    proc = subprocess.Popen([sys.executable, "-m", "chromalift", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                             "--model", str(tiny_weights), "--json", str(report), "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.time() + 120
    while not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir()):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    assert "before the interruption" in out
    records = json.loads(report.read_text())
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert sorted(Path(r["output"]).name for r in records if r.get("output")) == written


def test_a_report_that_cannot_be_written_keeps_the_summary(tmp_path, tiny_weights, capsys, monkeypatch):
    import chromalift.cli.colorize as cc

    def full(path, records):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(cc, "write_records", full)
    for i in range(2):
        _photo(tmp_path / "in" / f"{i}.png", i)
    rc = main([str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(tiny_weights), "--json", str(tmp_path / "r.json")])
    captured = capsys.readouterr()
    assert rc == 1 and "colorized 2 of 2 photos" in captured.out
    assert "r.json: cannot write the --json report (No space left on device)" in captured.err and "Traceback" not in captured.err


def test_out_of_memory_on_one_photo_is_that_photos_failure(tmp_path, tiny_weights, capsys, monkeypatch):
    from chromalift.inference.colorizer import Colorizer
    real = Colorizer.colorize

    def colorize(self, rgb, **k):
        if rgb.shape[1] == 33:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: "
                               "you tried to allocate 96000000000 bytes")
        return real(self, rgb, **k)
    monkeypatch.setattr(Colorizer, "colorize", colorize)
    _photo(tmp_path / "in" / "a.png")
    Image.fromarray(gradient_rgb(24, 33, 1)).save(tmp_path / "in" / "b.png")
    _photo(tmp_path / "in" / "c.png", 2)
    rc = main([str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(tiny_weights)])
    captured = capsys.readouterr()
    assert rc == 1 and "colorized 2 of 3 photos; 1 failed:" in captured.out
    assert "b.png: out of memory" in captured.err and "Traceback" not in captured.err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]


def test_photo_names_cannot_inject_formulas_into_votes_csv(tmp_path):
    from chromalift.apps.study import VoteLog, read_votes
    log = VoteLog(tmp_path / "votes.csv")
    for name in ("=HYPERLINK(\"http://evil\",\"x\").jpg", "+cmd.jpg", "-2+3.jpg", "@SUM(A1).jpg", "plain.jpg"):
        log.append({"time": "t", "participant": "p", "image": "i", "photo": name, "source": "s", "vote": "natural",
                    "response_ms": 1})
    cells = [r["photo"] for r in read_votes(tmp_path / "votes.csv")]
    assert all(not c.startswith(("=", "+", "-", "@")) for c in cells)
    assert cells[0] == "'=HYPERLINK(\"http://evil\",\"x\").jpg" and cells[-1] == "plain.jpg"


def _asgi(app, method: str, path: str, headers: dict, body: bytes = b"") -> tuple[int, bytes]:
    import asyncio
    sent = {"status": None, "body": b""}
    done = [False]

    async def receive():
        if done[0]:
            return {"type": "http.disconnect"}
        done[0] = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            sent["status"] = message["status"]
        elif message["type"] == "http.response.body":
            sent["body"] += message.get("body", b"")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 7860)}
    asyncio.run(app(scope, receive, send))
    return sent["status"], sent["body"]


def test_web_refuses_other_sites_and_rebound_names(tiny_weights):
    pytest.importorskip("fastapi")
    from chromalift.apps.web import Service, create_app
    from chromalift.inference.colorizer import Colorizer
    app = create_app(Service(Colorizer.load(tiny_weights, device="cpu")))
    status, body = _asgi(app, "GET", "/api/info", {"host": "evil.example:7860"})   # DNS rebinding
    assert status == 403 and b"not this server's name" in body
    status, body = _asgi(app, "POST", "/api/colorize", {"host": "127.0.0.1:7860", "origin": "http://evil.example",
                                                         "content-type": "multipart/form-data; boundary=b"})
    assert status == 403 and b"another web site" in body
    assert _asgi(app, "GET", "/api/info", {"host": "localhost:7860"})[0] == 200
    assert _asgi(app, "GET", "/api/info", {"host": "[::1]:7860"})[0] == 200
    status, _ = _asgi(app, "POST", "/api/colorize", {"host": "127.0.0.1:7860", "origin": "http://127.0.0.1:7860",
                                                     "content-type": "multipart/form-data; boundary=b"}, b"--b--\r\n")
    assert status == 400                                  # same origin: reaches the form (which has no photo)
    anywhere = create_app(Service(Colorizer.load(tiny_weights, device="cpu")), host="0.0.0.0")
    assert _asgi(anywhere, "GET", "/api/info", {"host": "my-laptop.local:7860"})[0] == 200


def test_study_refuses_cross_site_and_text_plain_votes(tmp_path, tiny_weights):
    pytest.importorskip("fastapi")
    from chromalift.apps.study import prepare_study
    from chromalift.apps.study_server import Ballot, create_app
    from chromalift.inference.colorizer import Colorizer
    photos = [_photo(tmp_path / "p" / f"{i}.png", i) for i in range(2)]
    study = prepare_study(photos, tmp_path / "study", [("real", None), ("tiny", Colorizer.load(tiny_weights, device="cpu"))],
                          size=32)
    ballot = Ballot(study)
    app = create_app(ballot)
    p = ballot.new_participant()
    j = ballot.next(p)
    vote = json.dumps({"participant": p, "image": j["image"], "token": j["token"], "vote": "natural", "response_ms": 5}).encode()
    status, _ = _asgi(app, "POST", "/api/vote", {"host": "127.0.0.1:7861", "content-type": "text/plain"}, vote)
    assert status == 415                                  # what a cross-site form can send without a preflight
    status, _ = _asgi(app, "POST", "/api/vote", {"host": "127.0.0.1:7861", "origin": "http://evil.example",
                                                 "content-type": "application/json"}, vote)
    assert status == 403
    status, _ = _asgi(app, "POST", "/api/vote", {"host": "127.0.0.1:7861", "content-type": "application/json"},
                      b"[" * 100_000 + b"]" * 100_000)
    assert status == 413
    status, body = _asgi(app, "POST", "/api/vote", {"host": "127.0.0.1:7861", "content-type": "application/json"}, vote)
    assert status == 200 and json.loads(body) == {"ok": True}
    ids = {i.id for i in study.items}
    again = prepare_study(photos, tmp_path / "study2", [("real", None), ("tiny", Colorizer.load(tiny_weights, device="cpu"))],
                          size=32)
    assert not ids & {i.id for i in again.items}, "ids are not a function of the seed"


def test_a_grey_photo_does_not_make_the_evaluation_psnr_infinite(tmp_path, tiny_weights):
    from chromalift.evaluation.evaluate import evaluate
    from chromalift.inference.colorizer import Colorizer
    for i in range(2):
        _photo(tmp_path / "set" / f"{i}.png", i)
    Image.fromarray(np.full((24, 32, 3), 90, np.uint8)).save(tmp_path / "set" / "grey.png")
    result = evaluate(Colorizer.load(tiny_weights, device="cpu"), tmp_path / "set", progress=False)
    assert result["photos"] == 3 and result["psnr_photos"] == 2
    assert np.isfinite(result["ours"]["psnr"]) and np.isfinite(result["grey"]["psnr"])


@pytest.mark.slow
def test_progress_into_a_log_file_is_lines_not_carriage_returns(tmp_path):
    """`colorize prepare ... > log 2>&1` wrote thousands of carriage-return updates into one line."""
    from helpers import make_photo_folder
    photos = make_photo_folder(tmp_path / "photos", per_class=30)
    with open(tmp_path / "log", "w") as log:
        proc = subprocess.run([sys.executable, "-m", "chromalift", "prepare", str(photos), str(tmp_path / "cache"),
                               "--size", "32", "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    text = (tmp_path / "log").read_text()
    assert proc.returncode == 0 and "\r" not in text
    assert any("prepare" in line and "60/60" in line for line in text.splitlines())


def test_evaluate_keeps_both_grids_of_two_sets_with_one_name_and_refuses_out_inside(tmp_path, tiny_weights, capsys):
    pytest.importorskip("skimage")
    for parent in ("A", "B"):
        for i in range(2):
            _photo(tmp_path / parent / "set" / f"{i}.png", i)
    out = tmp_path / "ev"
    assert main(["evaluate", str(tmp_path / "A" / "set"), str(tmp_path / "B" / "set"), "--model", str(tiny_weights),
                 "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("grid-*.png")) == ["grid-set-2.png", "grid-set.png"]
    capsys.readouterr()
    inside = tmp_path / "A" / "set" / "results"
    assert main(["evaluate", str(tmp_path / "A" / "set"), "--model", str(tiny_weights), "--out", str(inside)]) == 1
    assert "inside the evaluated folder" in capsys.readouterr().err and not inside.exists()


@pytest.mark.parametrize("name", ["pipe.mp4", "pipe.jpg"])
def test_a_fifo_or_a_device_is_refused_not_read(tmp_path, tiny_weights, capsys, name):
    fifo = tmp_path / name
    os.mkfifo(fifo)
    t0 = time.time()
    assert main([str(fifo), "--model", str(tiny_weights), "-o", str(tmp_path / "out" / name)]) == 1
    assert "not a regular file" in capsys.readouterr().err and time.time() - t0 < 30
    assert main(["/dev/urandom", "--model", str(tiny_weights), "-o", str(tmp_path / "u.png")]) == 1
    assert "not a regular file" in capsys.readouterr().err


def test_a_film_run_deletes_only_the_work_folder_it_made(tmp_path, tiny_weights, capsys):
    """A folder named like the film's work folder that colorize did not make is never deleted (or used);
    a symbolic link there is one line; a second run on the same output while one runs is refused."""
    from chromalift.film import work_folder as film_work
    from chromalift.film.synthetic import write_clip
    film = tmp_path / "film.mkv"
    write_clip(film, [np.full((32, 48, 3), 5 * i, np.uint8) for i in range(12)])
    out = tmp_path / "out.mkv"
    theirs = tmp_path / ".out.mkv.parts"
    theirs.mkdir()
    (theirs / "thesis.txt").write_text("years of work")
    assert main([str(film), "-o", str(out), "--model", str(tiny_weights)]) == 1
    assert "colorize did not make" in capsys.readouterr().err
    assert (theirs / "thesis.txt").read_text() == "years of work" and not out.exists()
    (theirs / "thesis.txt").unlink()
    theirs.rmdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    theirs.symlink_to(elsewhere)
    assert main([str(film), "-o", str(out), "--model", str(tiny_weights)]) == 1
    err = capsys.readouterr().err
    assert "was not made by colorize" in err and "Traceback" not in err and (elsewhere / "keep.txt").exists()
    theirs.unlink()
    lock = film_work.claim(film_work.work_folder(out), out)          # another run holds the film
    try:
        assert main([str(film), "-o", str(out), "--model", str(tiny_weights)]) == 1
        assert "another colorize run is writing this film" in capsys.readouterr().err
    finally:
        lock.close()
    assert main([str(film), "-o", str(out), "--model", str(tiny_weights)]) == 0
    assert out.exists() and not theirs.exists(), "its own work folder is gone once the film is done"


def test_a_second_runs_cleanup_leaves_a_live_temp_file_alone(tmp_path):
    """Two runs writing one output: the second's stale-temp cleanup deleted the first's live temp file."""
    from chromalift.io.atomic import atomic_write
    target = tmp_path / "report.json"
    seen = []

    def first(tmp):
        Path(tmp).write_text("first, still writing")
        atomic_write(target, lambda tmp2: Path(tmp2).write_text("second"))   # another run, meanwhile
        seen.append(Path(tmp).exists())
        Path(tmp).write_text("first")
    atomic_write(target, first)
    assert seen == [True] and target.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_oversized_metadata_is_left_behind_with_a_warning(tmp_path, tiny_weights, capsys):
    """EXIF over 64 KB made every JPEG output fail; 60 zTXt chunks of 1 MB (a 64 KB PNG) became a 63 MB output."""
    from PIL import PngImagePlugin
    src = tmp_path / "big_exif.png"                      # a PNG can carry it; a JPEG output cannot
    exif = Image.Exif()
    exif[0x010E] = "x" * 70_000                           # ImageDescription
    Image.fromarray(gradient_rgb(24, 32, 0)).save(src, exif=exif)
    assert main([str(src), "--model", str(tiny_weights), "-o", str(tmp_path / "out.jpg")]) == 0
    assert "more than a JPEG can hold" in capsys.readouterr().err and (tmp_path / "out.jpg").exists()
    info = PngImagePlugin.PngInfo()
    for i in range(60):
        info.add_text(f"k{i}", "a" * 2**20, zip=True)
    bomb = tmp_path / "ztxt.png"
    Image.fromarray(gradient_rgb(24, 32, 0)).save(bomb, pnginfo=info)
    assert bomb.stat().st_size < 200_000
    assert main([str(bomb), "--model", str(tiny_weights), "-o", str(tmp_path / "out.png")]) == 0
    assert "text chunks pass 256 KB" in capsys.readouterr().err
    assert (tmp_path / "out.png").stat().st_size < 100_000
