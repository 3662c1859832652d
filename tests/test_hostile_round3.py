"""Hostile input, round 2 continued: each test reproduces an attack from issue 34 with files made by hand
(or a real decoder's limits) and checks the one-line refusal, the bound, or the right output."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chromalift.cli.main import main


def _parts(tmp_path: Path, tiny_weights: Path) -> Path:
    from chromalift.train.gpu_window import split_weights
    folder = tmp_path / "parts"
    folder.mkdir()
    split_weights(tiny_weights, folder, tiny_weights.stat().st_size // 3 + 1)
    return folder


@pytest.mark.parametrize("forge", [
    lambda m: [m],                                                     # not an object
    lambda m: m | {"parts": 7},                                        # parts not a list
    lambda m: m | {"parts": [1, 2]},                                   # a part not an object
    lambda m: m | {"parts": [p | {"name": 5} for p in m["parts"]]},    # a name not a string
    lambda m: {k: v for k, v in m.items() if k != "sha256"},           # no checksum
    lambda m: m | {"bytes": 10**15},                                   # a size past any weights file
    lambda m: m | {"parts": [p | {"bytes": p["bytes"] + 1} for p in m["parts"]]},   # sizes that do not add up
    lambda m: m | {"parts": []},
    "[" * 5000 + "]" * 5000,                                           # deeply nested
    "not json {",
])
def test_join_refuses_a_malformed_manifest_in_one_line(tmp_path, tiny_weights, capsys, forge):
    folder = _parts(tmp_path, tiny_weights)
    manifest = folder / "manifest.json"
    text = forge if isinstance(forge, str) else json.dumps(forge(json.loads(manifest.read_text())))
    manifest.write_text(text)
    rc = main(["join", str(folder), str(tmp_path / "w.safetensors")])
    err = capsys.readouterr().err
    assert rc == 1 and "not a parts manifest" in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not (tmp_path / "w.safetensors").exists()


def test_join_does_not_read_a_part_larger_than_the_manifest_says(tmp_path, tiny_weights, capsys):
    folder = _parts(tmp_path, tiny_weights)
    first = folder / json.loads((folder / "manifest.json").read_text())["parts"][0]["name"]
    with open(first, "ab") as f:
        f.truncate(first.stat().st_size + 2**30)        # sparse: a 1 GiB file that costs no disk
    assert main(["join", str(folder), str(tmp_path / "w.safetensors")]) == 1
    assert "the manifest says" in capsys.readouterr().err
    shutil.rmtree(folder)


def test_join_still_joins_good_parts(tmp_path, tiny_weights):
    folder = _parts(tmp_path, tiny_weights)
    assert main(["join", str(folder), str(tmp_path / "w.safetensors")]) == 0
    assert (tmp_path / "w.safetensors").read_bytes() == tiny_weights.read_bytes()


def test_deeply_nested_json_inside_the_size_bound_is_a_400(tmp_path, tiny_weights):
    pytest.importorskip("fastapi")
    from test_hostile_round2 import _asgi, _photo

    from chromalift.apps.study import prepare_study
    from chromalift.apps.study_server import Ballot, create_app
    from chromalift.inference.colorizer import Colorizer
    photos = [_photo(tmp_path / "p" / f"{i}.png", i) for i in range(2)]
    study = prepare_study(photos, tmp_path / "study", [("real", None), ("tiny", Colorizer.load(tiny_weights, device="cpu"))],
                          size=32)
    app = create_app(Ballot(study))
    status, body = _asgi(app, "POST", "/api/vote", {"host": "127.0.0.1:7861", "content-type": "application/json"},
                         b"[" * 2000 + b"]" * 2000)
    assert status == 400 and b"JSON" in body


def _colour(path: Path, seed: int = 0, size: int = 40) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def test_prepare_names_the_photos_it_cannot_read(tmp_path, capsys):
    for i in range(2):
        _colour(tmp_path / "src" / "a" / f"{i}.png", i)
    (tmp_path / "src" / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    assert main(["prepare", str(tmp_path / "src"), str(tmp_path / "cache"), "--size", "16", "--workers", "1"]) == 0
    err = capsys.readouterr().err
    assert "skipped" in err and "broken.jpg" in err and "Traceback" not in err


def test_a_cache_and_a_study_get_the_permissions_mkdir_would_give(tmp_path, tiny_weights):
    import os
    import stat

    from chromalift.apps.study import prepare_study
    from chromalift.inference.colorizer import Colorizer
    for i in range(2):
        _colour(tmp_path / "src" / f"{i}.png", i)
    mask = os.umask(0o022)
    try:
        assert main(["prepare", str(tmp_path / "src"), str(tmp_path / "cache"), "--size", "16", "--workers", "1"]) == 0
        study = prepare_study(sorted((tmp_path / "src").glob("*.png")), tmp_path / "study",
                              [("real", None), ("tiny", Colorizer.load(tiny_weights, device="cpu"))], size=32)
    finally:
        os.umask(mask)
    for folder in (tmp_path / "cache", study.folder):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755, folder


def test_a_photo_format_read_but_not_written_is_settled_in_the_plan(tmp_path, tiny_weights, capsys):
    from PIL import features
    if not features.check("avif"):
        pytest.skip("this Pillow reads no AVIF")
    src = tmp_path / "old.avif"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 48), dtype=np.uint8)).save(src)
    assert main([str(src), "--model", str(tiny_weights)]) == 0
    assert (tmp_path / "old_color.png").is_file() and "writes" in capsys.readouterr().err


def test_an_unwritable_onnx_cache_is_named_not_blamed_on_a_missing_extra(tmp_path, tiny_weights, capsys, monkeypatch):
    pytest.importorskip("onnxruntime")
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    _colour(tmp_path / "p.png")
    rc = main([str(tmp_path / "p.png"), "-o", str(tmp_path / "o.png"), "--model", str(tiny_weights), "--backend", "onnx"])
    err = capsys.readouterr().err
    assert rc == 1 and "cannot write its cache" in err and "extra" not in err and "Traceback" not in err


@pytest.mark.parametrize("dtype", ["int32", "uint32"])
def test_32_bit_grey_tiffs_keep_their_tones(tmp_path, tiny_weights, dtype):
    tifffile = pytest.importorskip("tifffile")
    ramp = np.linspace(0, 1, 64 * 96).reshape(64, 96)
    top = np.iinfo(dtype).max
    tifffile.imwrite(tmp_path / "g.tif", (ramp * top).astype(dtype))
    from chromalift.io.photos import read_photo
    photo = read_photo(tmp_path / "g.tif")
    grey = photo.pixels[..., 0]
    assert photo.bits == 16 and abs(grey.min()) < 1e-6 and abs(grey.max() - 1) < 1e-6
    assert len(np.unique(np.round(grey * 255))) == 256               # not flat, not three levels
    assert main([str(tmp_path / "g.tif"), "-o", str(tmp_path / "o.png"), "--model", str(tiny_weights)]) == 0


def test_a_description_of_500_pages_is_not_copied_onto_a_one_page_output(tmp_path, tiny_weights):
    tifffile = pytest.importorskip("tifffile")
    grey = (np.linspace(0, 255, 64 * 96).reshape(64, 96)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "g.tif", grey, description='{"shape": [500, 64, 96]}', metadata=None)
    assert main([str(tmp_path / "g.tif"), "-o", str(tmp_path / "o.tif"), "--model", str(tiny_weights)]) == 0
    with tifffile.TiffFile(tmp_path / "o.tif") as t:
        assert t.asarray().shape == (64, 96, 3) and 270 not in t.pages[0].tags
    tifffile.imwrite(tmp_path / "c.tif", grey, description="Grandma at the lake, 1931", metadata=None)
    assert main([str(tmp_path / "c.tif"), "-o", str(tmp_path / "c_out.tif"), "--model", str(tiny_weights)]) == 0
    with tifffile.TiffFile(tmp_path / "c_out.tif") as t:                # a caption is the photo's: kept
        assert t.pages[0].tags[270].value == "Grandma at the lake, 1931"


def test_a_film_above_the_frame_limit_is_refused_on_its_header(tmp_path, tiny_weights, capsys):
    av = pytest.importorskip("av")
    clip = tmp_path / "big.avi"
    with av.open(str(clip), "w") as c:
        s = c.add_stream("mjpeg", rate=1)
        s.width, s.height, s.pix_fmt = 7008, 6000, "yuvj420p"        # 42 MP: above the 40 MP a frame
        frame = av.VideoFrame(7008, 6000, "yuvj420p")
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        for p in [*s.encode(frame), *s.encode()]:
            c.mux(p)
    assert main([str(clip), "-o", str(tmp_path / "o.mp4"), "--model", str(tiny_weights)]) == 1
    err = capsys.readouterr().err
    assert "7008x6000 (42 MP), above the limit of 40 MP a frame" in err and "Traceback" not in err
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / ".o.mp4.parts").exists()


@pytest.mark.slow
def test_a_client_trickling_its_headers_is_cut_off_and_others_are_served(tiny_weights, monkeypatch):
    pytest.importorskip("uvicorn")
    import socket
    import threading
    import time

    import uvicorn

    from chromalift.apps import server
    from chromalift.apps.web import Service, create_app
    from chromalift.inference.colorizer import Colorizer
    monkeypatch.setattr(server, "HEADER_TIMEOUT_S", 1.0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(Service(Colorizer.load(tiny_weights, device="cpu"))), host="127.0.0.1",
                            port=port, log_level="warning", http=server.HeaderDeadline, timeout_keep_alive=5)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        deadline = time.time() + 20
        while not srv.started:
            assert time.time() < deadline
            time.sleep(0.05)
        slow = socket.create_connection(("127.0.0.1", port))
        slow.settimeout(5)
        t0, closed = time.time(), False
        for byte in b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
            try:
                slow.send(bytes([byte]))
                time.sleep(0.1)
                fast = socket.create_connection(("127.0.0.1", port), timeout=5)   # meanwhile: served at once
                fast.sendall(f"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
                assert fast.recv(64).startswith(b"HTTP/1.1 200")
                fast.close()
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if _readable(slow) and slow.recv(1) == b"":
                closed = True
                break
        assert closed and time.time() - t0 < 4, "the trickling client was not cut off"
        slow.close()
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def _readable(sock) -> bool:
    import select
    return bool(select.select([sock], [], [], 0)[0])


def test_a_tiff_whose_tiles_dwarf_the_image_is_refused_before_decoding(tmp_path, capsys):
    tifffile = pytest.importorskip("tifffile")
    import resource
    import struct
    src = tmp_path / "t.tif"
    tifffile.imwrite(src, np.zeros((64, 64, 3), np.uint8), tile=(64, 64), compression="zlib", photometric="rgb")
    data = bytearray(src.read_bytes())
    with tifffile.TiffFile(src) as t:
        offsets = [t.pages[0].tags[code].offset for code in (322, 323)]
    for off in offsets:                                   # the tags say 16384 x 16384 tiles: 800 MB each
        struct.pack_into("<I", data, off + 8, 16384)
    src.write_bytes(bytes(data))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert main([str(src), "-o", str(tmp_path / "o.png")]) == 1
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024     # KB: nothing of 800 MB
    assert "tiles are far larger than the 64x64 image" in capsys.readouterr().err


def test_a_progressive_jpeg_of_thousands_of_scans_is_refused_before_decoding(tmp_path, capsys):
    import io
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(
        buf, "JPEG", progressive=True)
    data = buf.getvalue()
    last = data.rfind(b"\xff\xda")
    header = data[last:last + 2 + int.from_bytes(data[last + 2:last + 4], "big")]
    (tmp_path / "evil.jpg").write_bytes(data[:-2] + header * 5000 + b"\xff\xd9")    # 5000 empty scans
    (tmp_path / "fine.jpg").write_bytes(data)
    assert main([str(tmp_path / "evil.jpg"), "-o", str(tmp_path / "o.png")]) == 1
    assert "more than 256 scans" in capsys.readouterr().err
    assert main([str(tmp_path / "fine.jpg"), "-o", str(tmp_path / "f.png")]) == 0
    from chromalift.io.photos import ImageError, decode_photo
    with pytest.raises(ImageError, match="scans"):                      # an upload in memory, as the web page has it
        decode_photo((tmp_path / "evil.jpg").read_bytes(), name="upload.jpg")


def test_a_film_touches_nothing_beside_its_output_and_a_full_disk_is_one_line(tmp_path, tiny_weights, capsys,
                                                                              monkeypatch):
    pytest.importorskip("av")
    import errno
    import os

    from chromalift.film.synthetic import write_clip
    film = tmp_path / "film.mkv"
    write_clip(film, [np.full((32, 48, 3), 5 * i, np.uint8) for i in range(12)])
    out = tmp_path / "out.mkv"
    theirs = tmp_path / ".tmp-out.mkv"               # the name an earlier version joined into
    theirs.write_text("a user's file")
    real_save = np.save

    def full(path, *a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(np, "save", full)
    assert main([str(film), "-o", str(out), "--model", str(tiny_weights)]) == 1
    err = capsys.readouterr().err
    assert "cannot write the film's plan (No space left on device)" in err and "Traceback" not in err
    work = tmp_path / ".out.mkv.parts"
    assert not work.exists(), "nothing half-written is left: the emptied work folder went with the failed run"
    monkeypatch.setattr(np, "save", real_save)
    assert main([str(film), "-o", str(out), "--model", str(tiny_weights)]) == 0
    assert out.exists() and theirs.read_text() == "a user's file" and not work.exists()


def test_a_name_holding_line_breaks_prints_as_one_line(tmp_path, tiny_weights, capsys):
    folder = tmp_path / "in"
    _colour(folder / "a\ncolorize: error: forged.png")
    (folder / "broken\rname\x1b[2J.jpg").write_bytes(b"not a photo")
    assert main([str(folder), "-o", str(tmp_path / "out"), "--model", str(tiny_weights)]) == 1
    out, err = capsys.readouterr()
    lines = (out + err).splitlines()
    assert not any(line.startswith("colorize: error: forged") for line in lines)
    assert any("broken\\rname\\x1b[2J.jpg" in line for line in lines) and "\x1b" not in out + err
    assert (tmp_path / "out" / "a\ncolorize: error: forged.png").is_file()      # the name itself works


def test_a_tiff_whose_strip_tags_lie_is_one_line_in_bounded_memory(tmp_path, capsys):
    tifffile = pytest.importorskip("tifffile")
    import resource
    import struct
    src = tmp_path / "s.tif"
    tifffile.imwrite(src, np.zeros((64, 64, 3), np.uint8), rowsperstrip=64, compression="zlib", photometric="rgb")
    data = bytearray(src.read_bytes())
    with tifffile.TiffFile(src) as t:
        tags = {code: t.pages[0].tags[code].offset for code in (278, 279)}
    struct.pack_into("<I", data, tags[278] + 8, 2**31)           # rows per strip
    struct.pack_into("<I", data, tags[279] + 8, 3 * 2**30)       # a 3 GB strip in a 12 KB file
    src.write_bytes(bytes(data))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert main([str(src), "-o", str(tmp_path / "o.png")]) == 1
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024
    err = capsys.readouterr().err
    assert "s.tif: corrupt or truncated image" in err and "Traceback" not in err


def test_an_interrupt_while_a_photo_is_reported_loses_no_report_and_repeats_none():
    import os
    import signal
    import time

    from chromalift.batch.pipeline import overlapped
    written, reported = [], []

    def write(job, data, result):
        time.sleep(0.01)
        written.append(job)
        return job

    def done(job, result, error):
        if job == 2 and 2 not in reported:
            os.kill(os.getpid(), signal.SIGINT)      # arrives in the middle of reporting job 2
            time.sleep(0.05)
        reported.append(job)
    with pytest.raises(KeyboardInterrupt):
        overlapped(range(50), lambda j: j, lambda j, d: d, write, done)
    assert sorted(reported) == sorted(set(reported)) and set(reported) == set(written) and len(written) < 50
