"""Hostile input, as a user who tries to break it would give it: nothing a user had is ever lost,
memory stays bounded, and every failure is one line naming the file and the cause.

Grouped by family: output planning, folders written by `prepare`, atomic writes, the pixel limit,
model files, interruption, films, the web service. Each case failed before the fix it tests.
"""
from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import gradient_rgb
from PIL import Image
from safetensors.torch import save_file

from chromalift.cli.main import main
from chromalift.io.atomic import atomic_write
from chromalift.io.photos import ImageError, read_photo
from chromalift.model.weights import CheckpointError, load_weights
from chromalift.train.checkpoint import save_checkpoint
from chromalift.train.data.cache import DataError, prepare

ROOT = Path(__file__).resolve().parents[1]


def photo(path: Path, seed: int = 0, size=(24, 32)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(gradient_rgb(*size, seed=seed)).save(path)
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- output planning

def test_an_input_is_never_written_over_by_another_inputs_result(tmp_path, tiny_weights, capsys):
    album = tmp_path / "album"
    photo(album / "a.jpg", 1), photo(album / "a.png", 2)
    before = snapshot(album)
    code = main([str(album), "-o", str(album), "--format", "png", "--overwrite", "--model", str(tiny_weights)])
    after = snapshot(album)
    assert {k: after[k] for k in before} == before                       # both inputs untouched
    assert code == 0 and {"a-jpg.png", "a-png.png"} <= after.keys()      # both results, under distinct names
    assert "a-jpg.png" in capsys.readouterr().err                        # ... said in one line


def test_two_named_files_into_their_own_folder(tmp_path, tiny_weights):
    a, b = photo(tmp_path / "a.jpg", 1), photo(tmp_path / "a.png", 2)
    before = a.read_bytes(), b.read_bytes()
    assert main([str(a), str(b), "-o", str(tmp_path), "--format", "png", "--overwrite",
                 "--model", str(tiny_weights)]) == 0
    assert (a.read_bytes(), b.read_bytes()) == before


def test_two_inputs_with_one_output_name_both_survive_and_are_counted(tmp_path, tiny_weights, capsys):
    photo(tmp_path / "in" / "photo.jpg", 1), photo(tmp_path / "in" / "photo.png", 2)
    out = tmp_path / "out"
    assert main([str(tmp_path / "in"), "-o", str(out), "--format", "png", "--model", str(tiny_weights)]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 2 and "colorized 2 of 2 photos" in capsys.readouterr().out
    # run again without --overwrite: each refused as already there, by its own name
    assert main([str(tmp_path / "in"), "-o", str(out), "--format", "png", "--model", str(tiny_weights)]) == 1
    err = capsys.readouterr()
    assert all(f"{name}: already exists" in err.err for name in written)
    assert "colorized 0 of 2 photos; 2 failed:" in err.out and "skipped" not in err.out   # was "0 of 0; -2 were done"


def test_an_output_that_is_the_input_is_one_line_and_no_summary(tmp_path, tiny_weights, capsys):
    a = photo(tmp_path / "a.jpg", 1)
    before = a.read_bytes()
    assert main([str(a), "-o", str(a), "--model", str(tiny_weights)]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [f"colorize: error: {a}: is the input itself; choose another output"]
    assert captured.out == "" and a.read_bytes() == before


def test_output_folder_inside_the_input_is_not_read_back(tmp_path, tiny_weights):
    album = tmp_path / "album"
    photo(album / "x.jpg")
    for _ in range(2):
        main([str(album), "-o", str(album / "out"), "--overwrite", "--model", str(tiny_weights)])
    assert not (album / "out" / "out").exists()
    assert sorted(p.name for p in (album / "out").rglob("*")) == ["x.jpg"]


def test_unknown_output_extension_is_refused_not_made_a_folder(tmp_path, colour_jpeg, tiny_weights, capsys):
    assert main([str(colour_jpeg), "-o", str(tmp_path / "out.xyz"), "--model", str(tiny_weights)]) == 1
    assert not (tmp_path / "out.xyz").exists()
    err = capsys.readouterr().err
    assert "out.xyz: unknown output format .xyz" in err and len(err.strip().splitlines()) == 1


def test_an_output_that_cannot_be_written_is_refused_before_any_work(tmp_path, colour_jpeg, tiny_weights, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    assert main([str(colour_jpeg), "-o", str(blocker / "sub" / "x.jpg"), "--model", str(tiny_weights)]) == 1
    assert "cannot write there" in capsys.readouterr().err and blocker.read_text().startswith("a file")


# ---------------------------------------------------------------- folders written by prepare

def test_prepare_never_writes_into_or_over_the_photos(tmp_path):
    src = tmp_path / "parent" / "src"
    photo(src / "beach" / "1.jpg"), photo(src / "beach" / "2.jpg", 3)
    (tmp_path / "parent" / "notes.txt").write_text("mine")
    before = snapshot(tmp_path / "parent")
    for dst in (src, tmp_path / "parent", src / "cache"):
        with pytest.raises(DataError, match="outside the photo folder"):
            prepare(src, dst, size=16, progress=False, workers=1)
    assert snapshot(tmp_path / "parent") == before
    other = tmp_path / "other"
    (other / "keep.txt").parent.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="not a prepared cache"):
        prepare(src, other, size=16, progress=False, workers=1)
    assert (other / "keep.txt").read_text() == "mine"
    # a cache is replaced in place, and what else is in its folder stays
    cache = tmp_path / "cache"
    prepare(src, cache, size=16, progress=False, workers=1)
    (cache / "README").write_text("my notes")
    assert len(prepare(src, cache, size=8, progress=False, workers=1)) == 2
    assert (cache / "README").read_text() == "my notes"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".cache")]   # no build folder left


# ---------------------------------------------------------------- atomic writes

def test_a_failed_write_leaves_nothing_and_a_killed_ones_temp_is_removed_next_time(tmp_path):
    target = tmp_path / "last.pt"
    target.write_bytes(b"old")

    def fail(tmp):
        Path(tmp).write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, fail)
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    stale = tmp_path / ".last.pt.partial-abcd1234.pt"       # as a process killed mid-write leaves it
    stale.write_bytes(b"x" * 1000)
    unrelated = tmp_path / ".last.pt.partial-mine"
    unrelated.write_bytes(b"not ours")
    save_checkpoint(target, {"model_config": {}, "model": {}, "optimizer": {}, "rng": torch.zeros(1),
                             "step": 1, "best_val": 0.0})
    assert not stale.exists() and unrelated.exists()


# ---------------------------------------------------------------- the pixel limit

def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height but holds almost no data (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_our_pixel_limit_is_the_only_one_and_the_flag_moves_it(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(20_000, 5_000))                  # 100 MP: above Pillow's own 89 MP
    with pytest.raises(ImageError, match=r"above the limit of 50 MP.*--max-pixels"):
        read_photo(bomb, max_pixels=50_000_000)
    with pytest.raises(ImageError, match="corrupt or truncated"):     # our default admits it: decoding starts
        read_photo(bomb)
    with pytest.raises(ImageError, match="above the limit of 120 MP"):
        read_photo(_write(tmp_path / "b2.png", _png_header_only(20_000, 10_000)))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.slow
def test_a_thin_strip_costs_no_more_than_a_photo(tmp_path, tiny_weights):
    from chromalift.inference.geometry import MIN_PROCESS_SIDE, process_shape
    for h, w, size in [(1, 100_000, 256), (100_000, 1, 256), (1, 100_000, None), (3, 50_000, 512)]:
        ph, pw = process_shape(h, w, size)
        assert ph * pw <= max((size or 0) ** 2, h * w, MIN_PROCESS_SIDE ** 2)
        assert min(ph, pw) >= min(MIN_PROCESS_SIDE, min(h, w))
    strip = tmp_path / "strip.png"
    Image.new("L", (100_000, 1), 128).save(strip)
    # VmHWM is this process's own peak (ru_maxrss would count the forking parent's memory too)
    code = """import re, sys
from chromalift.cli.main import main
code = main(sys.argv[1:])
print(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
sys.exit(code)"""
    r = subprocess.run([sys.executable, "-c", code, str(strip), "-o", str(tmp_path / "out.png"), "--model",
                        str(tiny_weights)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    peak_mib = int(r.stdout.strip().splitlines()[-1]) / 1024
    assert peak_mib < 1500, f"peak memory {peak_mib:.0f} MiB for a 277-byte strip"
    assert Image.open(tmp_path / "out.png").size == (100_000, 1)


# ---------------------------------------------------------------- model files

def _foreign_weights(path: Path, tiny_weights: Path, *, config=None, dtype=None) -> Path:
    from safetensors import safe_open
    with safe_open(str(tiny_weights), "pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    if config is not None:
        meta["config"] = json.dumps(config)
    if dtype is not None:
        tensors = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in tensors.items()}
    save_file(tensors, str(path), metadata=meta)
    return path


@pytest.mark.parametrize("change, message", [
    ({"config": {"num_classes": 3, "width": 0.125, "global_size": 32, "depth": 50}}, "unknown keys: depth"),
    ({"config": {"num_classes": "3", "width": 0.125, "global_size": 32}}, "num_classes='3' has the wrong type"),
    ({"config": {"num_classes": 10**9, "width": 0.125, "global_size": 32}}, "out of range"),
    ({"config": {"num_classes": 3, "width": 4.0, "global_size": 32}}, "tensor .* expected"),
    ({"config": [1, 2]}, "not one this version reads"),
    ({"dtype": torch.int32}, "is I32 .* expected float32"),
])
def test_a_bad_model_file_is_one_line_naming_it(tmp_path, tiny_weights, colour_jpeg, capsys, change, message):
    bad = _foreign_weights(tmp_path / "bad.safetensors", tiny_weights, **change)
    with pytest.raises(CheckpointError, match=message):
        load_weights(bad)
    assert main([str(colour_jpeg), "--model", str(bad), "-o", str(tmp_path / "o.jpg")]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "o.jpg").exists()


def test_an_incomplete_checkpoint_is_one_line(tmp_path, capsys):
    ckpt = tmp_path / "last.pt"
    save_checkpoint(ckpt, {"model_config": {"num_classes": 3, "width": 0.125, "global_size": 32}, "step": 3})
    assert main(["weights", str(ckpt), str(tmp_path / "w.safetensors")]) == 1
    err = capsys.readouterr().err
    assert "incomplete training checkpoint (missing model)" in err and str(ckpt) in err


# ---------------------------------------------------------------- interruption

def test_ctrl_c_in_a_batch_prints_the_summary_so_far_and_exits_130(tmp_path, tiny_weights, capsys, monkeypatch):
    from chromalift.inference.colorizer import Colorizer
    for i in range(3):
        photo(tmp_path / "in" / f"{i}.png", i)
    real, calls = Colorizer.colorize, []

    def colorize(self, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(Colorizer, "colorize", colorize)
    assert main([str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(tiny_weights)]) == 130
    captured = capsys.readouterr()
    assert "colorized 1 of 3 photos before the interruption" in captured.out and "Traceback" not in captured.err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["0.png"]


@pytest.mark.slow
def test_sigterm_to_the_whole_process_group_saves_and_exits_130(tmp_path):
    from helpers import make_photo_folder
    data = make_photo_folder(tmp_path / "photos", per_class=16)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "chromalift", "train", "--data", str(data), "--out", str(run), "--width", "0.125",
           "--crop", "32", "--prepare-size", "40", "--batch-size", "8", "--steps", "100000", "--workers", "1",
           "--threads", "1", "--ckpt-every", "1000", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 120
    while not (run / "log.jsonl").exists() or not (run / "log.jsonl").read_text().strip():
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)                   # as Slurm, Kubernetes and `timeout` do
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "stopped at step" in out + err
    assert (run / "last.pt").exists()


# ---------------------------------------------------------------- films

def test_a_still_image_named_like_a_film_is_refused(tmp_path, tiny_weights, capsys):
    fake = tmp_path / "holiday.mp4"
    Image.fromarray(gradient_rgb(32, 48)).save(fake, format="JPEG")
    assert main([str(fake), "-o", str(tmp_path / "out.mp4"), "--model", str(tiny_weights)]) == 1
    err = capsys.readouterr().err
    assert "holiday.mp4: is a still image (jpeg), not a video" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["holiday.mp4"]


def test_a_truncated_film_is_refused_not_half_written(tmp_path, tiny_weights, capsys):
    from chromalift.film.synthetic import write_clip
    whole = tmp_path / "whole.mkv"
    write_clip(whole, [np.full((32, 48, 3), 5 * i, np.uint8) for i in range(48)])
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert main([str(cut), "-o", str(tmp_path / "out.mkv"), "--model", str(tiny_weights)]) == 1
    assert "truncated or damaged" in capsys.readouterr().err
    assert not (tmp_path / "out.mkv").exists() and not list(tmp_path.glob(".out.mkv*"))


# ---------------------------------------------------------------- evaluate

def test_evaluate_skips_a_corrupt_photo_and_reports_the_rest(tmp_path, tiny_weights, capsys):
    photo(tmp_path / "set" / "good.png"), _write(tmp_path / "set" / "bad.jpg", b"\xff\xd8\xff not a jpeg")
    assert main(["evaluate", str(tmp_path / "set"), "--model", str(tiny_weights), "--out", str(tmp_path / "ev")]) == 1
    result = json.loads((tmp_path / "ev" / "results.json").read_text())[0]
    assert result["photos"] == 1 and "bad.jpg" in result["failed"][0]
    assert "skipped" in capsys.readouterr().err


# ---------------------------------------------------------------- the web service

def _asgi_post(app, chunks, headers=(), stall_after: int | None = None):
    """POST /api/colorize straight into the ASGI app; -> (status, headers, body, chunks the app took)."""
    import asyncio
    taken, sent = [0], {"status": None, "headers": {}, "body": b""}

    async def receive():
        i = taken[0]
        taken[0] += 1
        if stall_after is not None and i >= stall_after:
            await asyncio.sleep(3600)                       # a client that stops sending
        if i < len(chunks):
            return {"type": "http.request", "body": chunks[i], "more_body": i + 1 < len(chunks)}
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            sent["status"] = message["status"]
            sent["headers"] = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            sent["body"] += message.get("body", b"")

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/colorize", "raw_path": b"/api/colorize", "query_string": b"", "root_path": "",
             "headers": [(k.encode(), v.encode()) for k, v in headers], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80)}
    asyncio.run(app(scope, receive, send))
    return sent["status"], sent["headers"], sent["body"], taken[0]


@pytest.fixture
def web_app(tiny_weights):
    pytest.importorskip("fastapi")
    from chromalift.apps.web import Service, create_app
    from chromalift.inference.colorizer import Colorizer
    service = Service(Colorizer.load(tiny_weights, device="cpu"), max_upload_mb=1, max_pixels=2_000_000)
    return service, create_app(service)


def test_web_refuses_a_chunked_upload_as_it_passes_the_limit(web_app):
    _, app = web_app
    chunks = [b"x" * 2**16] * 200                           # 12.5 MB, no Content-Length
    status, _headers, body, taken = _asgi_post(app, chunks, [("content-type", "multipart/form-data; boundary=b")])
    assert status == 413 and b"above the limit" in body
    assert taken < 70                                       # stopped at about 4 MB (photo, reference, strokes), not 12.5


def test_web_cuts_off_a_stalled_upload(web_app, monkeypatch):
    import chromalift.apps.web as web
    monkeypatch.setattr(web, "BODY_TIMEOUT_S", 0.5)
    _, app = web_app
    t0 = time.perf_counter()
    status, _, body, _ = _asgi_post(app, [b"--b\r\n"] * 10, [("content-type", "multipart/form-data; boundary=b")],
                                    stall_after=2)
    assert status == 408 and b"longer than" in body and time.perf_counter() - t0 < 10


def test_web_sends_security_headers(web_app):
    _, app = web_app
    status, headers, _, _ = _asgi_post(app, [b""], [("content-type", "text/plain")])
    assert status == 400
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'sha256-" in csp and "unsafe-inline" not in csp


def test_web_decodes_inside_the_one_at_a_time_lock(web_app, monkeypatch):
    import chromalift.apps.web as web
    service, _ = web_app
    seen = []
    real = web.decode_photo

    def decode(*a, **k):
        seen.append(service._lock.locked())
        return real(*a, **k)

    monkeypatch.setattr(web, "decode_photo", decode)
    import io
    buf = io.BytesIO()
    Image.fromarray(gradient_rgb(24, 32)).save(buf, format="PNG")
    service.colorize_png(buf.getvalue(), "a.png", buf.getvalue(), "ref.png")
    assert seen == [True, True]


def test_a_full_disk_while_writing_a_film_is_one_line_and_leaves_no_partial_segment(tmp_path, tiny_weights,
                                                                                      capsys, monkeypatch):
    import errno

    import chromalift.film.run as video
    from chromalift.film.synthetic import write_clip
    film = tmp_path / "film.mkv"
    write_clip(film, [np.full((32, 48, 3), 5 * i, np.uint8) for i in range(24)])
    real_open = video.open_writer

    class FullDisk:
        def __init__(self, writer):
            self.writer, self.packets = writer, 0

        def mux(self, packet):
            self.packets += 1
            if self.packets > 3:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.writer.mux(packet)

        def close(self):
            self.writer.close()
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(video, "open_writer", lambda *a: (lambda w, s: (FullDisk(w), s))(*real_open(*a)))
    out = tmp_path / "out" / "film.mkv"
    assert main([str(film), "-o", str(out), "--model", str(tiny_weights), "--batch", "2"]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    assert not out.exists() and not list(out.parent.rglob(".tmp-*"))


def test_export_does_not_replace_existing_models_unasked(tmp_path, tiny_weights, capsys):
    folder = tmp_path / "onnx"
    folder.mkdir()
    (folder / "global.onnx").write_bytes(b"mine")
    assert main(["export", "--onnx", str(folder), "--model", str(tiny_weights)]) == 1
    assert (folder / "global.onnx").read_bytes() == b"mine" and "already exists" in capsys.readouterr().err
    assert main(["export", "--onnx", str(folder), "--model", str(tiny_weights), "--overwrite"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["global.onnx", "local.onnx"]   # no temp files left
