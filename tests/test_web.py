"""The web page: the service's limits and messages, and the page itself driven in headless Chromium."""
from __future__ import annotations

import io
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import CHROMIUM, CHROMIUM_FLAGS, gradient_rgb
from PIL import Image

from chromalift import Colorizer
from chromalift.apps.web import Service, UploadError, create_app


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def _grey(h=48, w=64, seed=0) -> np.ndarray:
    return np.asarray(Image.fromarray(gradient_rgb(h, w, seed)).convert("L").convert("RGB"))


@pytest.fixture(scope="module")
def service(tiny_weights):
    return Service(Colorizer.load(tiny_weights, device="cpu"), max_upload_mb=1, max_pixels=2_000_000,
                   max_side=4000)


def test_service_colorizes_at_the_photos_size_and_follows_the_reference(service):
    out = Image.open(io.BytesIO(service.colorize_png(_png(_grey(48, 64)), "a.png")))
    assert out.format == "PNG" and out.size == (64, 48) and out.mode == "RGB"
    rgb = np.asarray(out).astype(int)
    assert np.abs(rgb[..., 0] - rgb[..., 2]).mean() > 3, "colour came back"
    ref = gradient_rgb(64, 64, seed=5)[:, ::-1].copy()
    styled = np.asarray(Image.open(io.BytesIO(service.colorize_png(_png(_grey(48, 64)), "a.png", _png(ref)))))
    assert np.abs(styled.astype(int) - rgb).mean() > 2


def test_service_names_the_likeliest_scene_classes(service):
    png, classes = service.colorize(_png(_grey()), "a.png")
    assert Image.open(io.BytesIO(png)).size == (64, 48)
    assert [c for c, _ in classes] and {c for c, _ in classes} <= {"a", "b", "c"} and len(classes) == 3
    assert classes[0][1] >= classes[1][1] >= classes[2][1] and sum(p for _, p in classes) <= 1.0001


def test_service_keeps_transparency(service):
    rgba = np.dstack([_grey(), np.full((48, 64), 128, np.uint8)])
    out = Image.open(io.BytesIO(service.colorize_png(_png(rgba), "a.png")))
    assert out.mode == "RGBA" and np.asarray(out)[..., 3].max() == 128


@pytest.mark.parametrize("data, status, message", [
    (b"%PDF-1.4 not a photo", 400, "notes.pdf: not an image"),
    (b"", 400, "notes.pdf: empty file"),
    (b"\xff\xd8" + bytes(2 * 2**20), 413, "above the upload limit of 1 MB"),
])
def test_service_refuses_bad_uploads(service, data, status, message):
    with pytest.raises(UploadError, match=message) as e:
        service.colorize_png(data, "notes.pdf")
    assert e.value.status == status


def test_service_refuses_oversized_dimensions(service):
    with pytest.raises(UploadError, match="each side may be at most 4000") as e:
        service.colorize_png(_png(np.zeros((2, 4100, 3), np.uint8)), "strip.png")
    assert e.value.status == 413
    with pytest.raises(UploadError, match="above the limit of 2 MP") as e:
        service.colorize_png(_png(np.zeros((1500, 1500, 3), np.uint8)), "big.png")
    assert e.value.status == 413


def _two_regions(h=60, w=80) -> np.ndarray:
    photo = np.zeros((h, w, 3), np.uint8)
    photo[:, : w // 2], photo[:, w // 2:] = 70, 200                # a strong edge down the middle
    return photo


def _hue(rgb) -> float:
    import math

    import torch

    from chromalift.color.lab import rgb_to_lab, uint8_to_float
    lab = rgb_to_lab(uint8_to_float(torch.tensor(np.array(rgb, np.uint8).reshape(1, 1, 3))))
    return math.degrees(math.atan2(float(lab[2]), float(lab[1])))


def test_service_hints_recolour_a_region_and_rerender_without_the_network(service, monkeypatch):
    from chromalift.inference.hints import Hints
    photo = _png(_two_regions())
    plain = np.asarray(Image.open(io.BytesIO(service.colorize(photo, "a.png")[0])))
    calls = []
    real = service.colorizer.analyse
    monkeypatch.setattr(service.colorizer, "analyse", lambda *a, **k: calls.append(1) or real(*a, **k))
    hinted = np.asarray(Image.open(io.BytesIO(service.colorize(photo, "a.png", hints=Hints(points=((10, 30, (190, 40, 40)),)))[0])))
    assert calls == [], "the same photo again: its analysis is reused"
    assert abs(_hue(hinted[5, 5]) - _hue((190, 40, 40))) < 8 and hinted[5, 5, 0] > hinted[5, 5, 2] + 40
    assert np.abs(hinted[:, 42:].astype(int) - plain[:, 42:]).max() <= 1
    jpeg, _ = service.colorize(photo, "a.png", fmt="jpeg")
    assert Image.open(io.BytesIO(jpeg)).format == "JPEG"
    service.colorize(_png(_grey()), "b.png")
    assert calls == [1], "another photo: analysed afresh"


def test_service_refuses_malformed_hints(service):
    for text in ('{"points": [[1, 2]]}', '{"points": [[1, 2, "red"]]}', "[[1, 2, 3]]", "not json",
                 '{"points": ' + "[" * 5000 + "]" * 5000 + "}", '{"points": [[1e400, 2, "#ff0000"]]}'):
        with pytest.raises(UploadError, match="hints: expected") as e:
            service.hints(text, None)
        assert e.value.status == 400
    with pytest.raises(UploadError, match="outside the photo") as e:
        service.colorize(_png(_grey()), "a.png", hints=service.hints('{"points": [[500, 2, "#ff0000"]]}', None))
    assert e.value.status == 400
    with pytest.raises(UploadError, match="no transparency"):
        service.hints(None, _png(_grey()))


# ---------------------------------------------------------------- the page, in a real browser

@pytest.fixture(scope="module")
def server(service):
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started:
        assert time.time() < deadline and thread.is_alive(), "the web server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium is missing: run sh tests/install-browser.sh (the README's test command does)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto(server + "/")
    page.wait_for_function("() => document.querySelectorAll('#examples img').length > 0")
    yield page
    context.close()


def _wait_done(page, text=""):
    page.wait_for_function(
        "t => document.body.dataset.state === 'done' && document.getElementById('status').textContent.includes(t)",
        arg=text, timeout=60_000)


def _download(page, tmp_path, name) -> np.ndarray:
    with page.expect_download() as info:
        page.click("#download")
    path = tmp_path / name
    info.value.save_as(path)
    assert info.value.suggested_filename == "photo_color.png"
    return np.asarray(Image.open(path))


def test_page_colorizes_an_upload_and_the_reference_changes_the_colours(page, tmp_path):
    (tmp_path / "photo.png").write_bytes(_png(_grey(48, 64)))
    page.set_input_files("#photo-input", str(tmp_path / "photo.png"))
    _wait_done(page, "64x48")
    plain = _download(page, tmp_path, "plain.png")
    assert plain.shape == (48, 64, 3)
    assert np.abs(plain[..., 0].astype(int) - plain[..., 2]).mean() > 3, "a colour image came back"
    assert page.is_visible("#compare") and page.is_visible("#slider")
    scenes = page.inner_text("#classes")                       # the scene classes, under the result
    assert scenes.startswith("Scene, as the network reads it: ") and scenes.count("%") == 3
    assert {part.rsplit(" ", 1)[0] for part in scenes.split(": ", 1)[1].split(", ")} <= {"a", "b", "c"}

    (tmp_path / "mood.png").write_bytes(_png(gradient_rgb(64, 64, seed=5)[:, ::-1].copy()))
    page.set_input_files("#reference-input", str(tmp_path / "mood.png"))
    _wait_done(page, "colour mood from mood.png")
    styled = _download(page, tmp_path, "styled.png")
    assert styled.shape == plain.shape and np.abs(styled.astype(int) - plain).mean() > 2

    page.click("#reference-clear")                    # without the reference: the photo's own colours again
    page.wait_for_function("() => !document.getElementById('status').textContent.includes('mood')")
    _wait_done(page, "64x48")
    assert np.array_equal(_download(page, tmp_path, "again.png"), plain)


def test_page_rejects_a_non_image_politely(page, tmp_path):
    (tmp_path / "notes.txt").write_text("shopping list")
    page.set_input_files("#photo-input", str(tmp_path / "notes.txt"))
    page.wait_for_function("() => document.body.dataset.state === 'error'")
    assert "notes.txt: not an image" in page.inner_text("#error")
    assert not page.is_visible("#compare")


def test_page_reports_an_oversized_photo(page, tmp_path):
    (tmp_path / "strip.png").write_bytes(_png(np.zeros((2, 4100, 3), np.uint8)))
    page.set_input_files("#photo-input", str(tmp_path / "strip.png"))
    page.wait_for_function("() => document.body.dataset.state === 'error'")
    assert "strip.png: 4100x2 is too large" in page.inner_text("#error")


def test_page_examples_colorize_with_a_click(page):
    page.click("img[data-example='lake.jpg']")
    _wait_done(page, "384x256")
    page.click("img[data-example='ref-parrots.jpg']")
    _wait_done(page, "ref-parrots.jpg")
    size = page.evaluate("[document.getElementById('result').naturalWidth, document.getElementById('result').naturalHeight]")
    assert size == [384, 256]


def test_page_takes_a_dropped_photo(page):
    # what a drag and drop from the desktop delivers: a drop event whose DataTransfer holds the file
    page.evaluate("""async () => {
        const blob = await (await fetch('/examples/houses.jpg')).blob();
        const data = new DataTransfer();
        data.items.add(new File([blob], 'dropped.jpg', { type: 'image/jpeg' }));
        document.getElementById('photo-drop').dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true }));
    }""")
    _wait_done(page)
    assert page.inner_text("#photo-name") == "dropped.jpg"
    assert page.get_attribute("#download", "download") == "dropped_color.jpg"     # a JPEG comes back as one


@pytest.mark.slow
def test_colorize_web_command_serves_the_page(tiny_weights):
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "chromalift", "web", "--port", str(port), "--model",
                             str(tiny_weights), "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    html = r.read().decode()
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, proc.stdout.read() if proc.poll() else "timeout"
                time.sleep(0.2)
        assert "Let there be Color!" in html and 'id="photo-input"' in html
    finally:
        proc.terminate()
        proc.wait(10)


def test_page_drop_zones_work_from_the_keyboard(page):
    # Enter or Space on a focused drop zone must reach its file input (which then opens the chooser; the
    # chooser itself is the browser's, and a click that is prevented here keeps it from opening)
    page.evaluate("""() => { window.clicked = [];
        for (const id of ['photo-input', 'reference-input'])
            document.getElementById(id).addEventListener('click', (e) => { window.clicked.push(id); e.preventDefault(); });
    }""")
    for zone, key in (("#photo-drop", "Enter"), ("#reference-drop", " ")):
        page.focus(zone)
        assert page.evaluate("document.activeElement.id") == zone[1:]
        page.keyboard.press(key)
    page.wait_for_function("() => window.clicked.length === 2")
    assert page.evaluate("window.clicked") == ["photo-input", "reference-input"]


def test_page_colour_hints_recolour_a_region_and_stop_at_an_edge(page, tmp_path):
    """A click with a red hint turns its region red and leaves the region across a strong edge as it was;
    a brush stroke recolours too; undo and clear take hints back."""
    (tmp_path / "photo.png").write_bytes(_png(_two_regions(120, 160)))
    page.set_input_files("#photo-input", str(tmp_path / "photo.png"))
    _wait_done(page, "160x120")
    plain = _download(page, tmp_path, "plain.png")
    page.eval_on_selector("#hint-color", "el => { el.value = '#c02828'; }")
    box = page.locator("#overlay").bounding_box()
    page.click("#overlay", position={"x": box["width"] * 0.25, "y": box["height"] * 0.5})
    _wait_done(page, "1 colour hint")
    red = _download(page, tmp_path, "red.png").astype(int)
    assert abs(_hue(red[10, 10]) - _hue((192, 40, 40))) < 10 and red[10, 10, 0] > red[10, 10, 2] + 40
    assert np.abs(red[:, 84:] - plain[:, 84:]).max() <= 1, "across the edge: as it was"

    page.click("#tool-brush")
    page.eval_on_selector("#hint-color", "el => { el.value = '#2040d0'; }")
    x0, y = box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.3
    page.mouse.move(x0, y)
    page.mouse.down()
    for step in range(1, 6):
        page.mouse.move(x0 + step * box["width"] * 0.05, y)
    page.mouse.up()
    _wait_done(page, "2 colour hints")
    both = _download(page, tmp_path, "both.png").astype(int)
    assert both[100, 150, 2] > both[100, 150, 0] + 20, "the stroke's region turned blue"
    assert np.abs(both[:, :70] - red[:, :70]).max() <= 2

    page.click("#hint-undo")
    _wait_done(page, "1 colour hint")
    assert np.abs(_download(page, tmp_path, "undone.png").astype(int) - red).max() <= 1
    page.click("#hint-clear")
    page.wait_for_function("() => !document.getElementById('status').textContent.includes('hint')")
    _wait_done(page, "160x120")
    assert np.array_equal(_download(page, tmp_path, "cleared.png"), plain)
