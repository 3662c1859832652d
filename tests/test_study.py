"""The user study: preparation, the ballot (who sees what), crash safety of the votes, the page in Chromium,
and the report's numbers against a hand-made votes file."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from helpers import gradient_rgb
from PIL import Image

from chromalift import Colorizer
from chromalift.apps.study import GREY, REAL, StudyError, VoteLog, load_study, prepare_study, read_votes, source_names
from chromalift.apps.study_report import chart, markdown, tally, wilson
from chromalift.apps.study_server import Ballot, VoteRefused, create_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for i, (h, w) in enumerate([(48, 64), (60, 40), (40, 40), (50, 70)]):
        p = folder / f"photo{i}.png"
        Image.fromarray(gradient_rgb(h, w, seed=i)).save(p)
        paths.append(p)
    return paths


@pytest.fixture(scope="module")
def sources(tiny_weights):
    return [(REAL, None), ("tiny", Colorizer.load(tiny_weights, device="cpu")), (GREY, None)]


@pytest.fixture
def study(photos, sources, tmp_path):
    return prepare_study(photos, tmp_path / "study", sources, seed=3, size=64)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "images").iterdir())}


def test_preparation_is_deterministic_and_hides_the_source(photos, sources, tmp_path):
    a = prepare_study(photos, tmp_path / "a", sources, seed=3, size=64)
    b = prepare_study(photos, tmp_path / "b", sources, seed=3, size=64)
    assert [(i.photo, i.source) for i in a.items] == [(i.photo, i.source) for i in b.items], "the seed sets the order"
    assert not {i.id for i in a.items} & {i.id for i in b.items}, "ids are unpredictable: no seed gives them away"
    image = lambda study, i: study.image_path(i.id).read_bytes()
    assert [image(a, i) for i in a.items] == [image(b, i) for i in b.items], "the same images"
    assert len(a.items) == 4 * 3 and a.sources == ["real", "tiny", "grey"] and len(a.photos) == 4
    assert all(len(i.id) == 12 and "real" not in i.id and "grey" not in i.id for i in a.items)
    c = prepare_study(photos, tmp_path / "c", sources, seed=4, size=64)
    assert [i.photo for i in c.items] != [i.photo for i in a.items], "another seed, another order"
    assert not list(tmp_path.glob(".*partial*")), "no temporary folder is left"


def test_every_version_of_a_photo_has_one_size_and_one_compression(study, photos):
    for photo in study.photos:
        images = [Image.open(study.image_path(i.id)) for i in study.items if i.photo == photo]
        assert len({im.size for im in images}) == 1 and {im.format for im in images} == {"JPEG"}
        assert len({json.dumps(im.quantization, sort_keys=True) for im in images}) == 1, "same quality"
        assert max(images[0].size) <= 64
    by = {(i.photo, i.source): np.asarray(Image.open(study.image_path(i.id))).astype(int) for i in study.items}
    grey = by[("photo1.png", GREY)]
    assert np.abs(grey[..., 0] - grey[..., 2]).max() <= 3, "the grey baseline has no colour"
    real = np.asarray(Image.open(photos[1]).convert("RGB")).astype(int)
    error = np.abs(by[("photo1.png", REAL)] - real).mean()   # JPEG noise on a noisy pattern, at 40x60 as it was
    assert error < 10 and error < np.abs(grey - real).mean() / 3, "the real version is the photo"
    assert np.abs(by[("photo1.png", "tiny")] - grey).mean() > 3, "the model coloured its greyscale"


def test_an_existing_study_is_never_replaced_and_a_failed_one_leaves_nothing(study, photos, sources, tmp_path):
    before = _files(study.folder)
    with pytest.raises(StudyError, match="already exists"):
        prepare_study(photos, study.folder, sources, seed=3, size=64)
    assert _files(study.folder) == before

    class Broken:
        def colorize(self, *a, **k):
            raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        prepare_study(photos, tmp_path / "broken", [(REAL, None), ("broken", Broken())], size=64)
    assert not (tmp_path / "broken").exists() and not list(tmp_path.glob(".broken*"))


def test_unreadable_photos_are_skipped_with_one_line(photos, sources, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_bytes(b"not a photo")
    lines = []
    s = prepare_study([photos[0], bad], tmp_path / "s", sources, size=64, on_skip=lines.append)
    assert s.photos == ["photo0.png"] and len(lines) == 1 and lines[0].startswith(str(bad))


def test_source_names_are_unique_and_real_comes_first():
    assert source_names(["shipped", "grey", "runs/a/w.safetensors", "runs/b/w.safetensors"]) == [
        ("real", "real"), ("shipped", "shipped"), ("grey", "grey"), ("w.safetensors", "runs/a/w.safetensors"),
        ("w.safetensors-2", "runs/b/w.safetensors")]


def _vote_all(ballot: Ballot, participant: str, choice=lambda item: "natural") -> list[str]:
    shown = []
    while not (j := ballot.next(participant)).get("finished"):
        shown.append(j["image"])
        ballot.vote(participant, j["image"], choice(ballot.items[j["image"]]), 700, j["token"])
    return shown


def test_participants_see_every_photo_once_and_the_sources_stay_balanced(study):
    ballot = Ballot(study)
    people = [ballot.new_participant() for _ in range(3)]
    shown = {p: [] for p in people}
    for _ in range(len(study.photos)):          # interleaved, as several browsers at once
        nexts = {p: ballot.next(p) for p in people}
        for p, j in nexts.items():
            assert ballot.next(p)["image"] == j["image"], "a reload shows the same image until it is judged"
            shown[p].append(j["image"])
            ballot.vote(p, j["image"], "natural", 500, j["token"])
    for p in people:
        assert sorted(ballot.items[i].photo for i in shown[p]) == sorted(study.photos)
        assert ballot.next(p)["finished"]
    assert Counter(i for s in shown.values() for i in s) == Counter({i.id: 1 for i in study.items}), \
        "three participants, three sources: every image judged exactly once"
    rows = read_votes(study.votes_path)
    assert len(rows) == 12 and {r["response_ms"] for r in rows} == {"500"}


def test_votes_are_checked(study):
    ballot = Ballot(study)
    p = ballot.new_participant()
    j = ballot.next(p)
    image, token = j["image"], j["token"]
    other = next(i.id for i in study.items if i.id != image and i.photo != ballot.items[image].photo)
    for args, status in [((p, image, "maybe", 10, token), 400), ((p, "ffffffffffff", "natural", 10, token), 404),
                         ((p, image, "natural", -5, token), 400), ((p, image, "natural", "fast", token), 400),
                         (("../etc", image, "natural", 10, token), 400),
                         (("0123456789abcdef", image, "natural", 10, token), 403),     # a participant never issued
                         ((p, other, "natural", 10, token), 403),                      # an image not shown to p
                         ((p, image, "natural", 10, None), 403)]:
        with pytest.raises(VoteRefused) as e:
            ballot.vote(*args)
        assert e.value.status == status
    with pytest.raises(VoteRefused) as e:
        ballot.next("0123456789abcdef")
    assert e.value.status == 403
    ballot.vote(p, image, "natural", 10, token)
    with pytest.raises(VoteRefused, match="already judged") as e:
        ballot.vote(p, image, "not_natural", 10, token)
    assert e.value.status == 409 and len(read_votes(study.votes_path)) == 1


def test_a_restarted_ballot_remembers_and_drops_a_torn_line(study):
    ballot = Ballot(study)
    p = ballot.new_participant()
    j = ballot.next(p)
    first = [j["image"]]
    ballot.vote(p, first[0], "natural", 10, j["token"])
    with open(study.votes_path, "a") as f:   # a crash in the middle of writing the next vote
        f.write("2026-01-01T00:00:00,{p},abc")
    again = Ballot(study)
    assert study.votes_path.read_text().endswith("\n") and len(read_votes(study.votes_path)) == 1
    rest = _vote_all(again, p)
    assert sorted(again.items[i].photo for i in first + rest) == sorted(study.photos)


# ---------------------------------------------------------------- the server, killed mid-study

def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def _start(folder: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "chromalift", "study", "--serve", str(folder), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).close()
            return proc
        except OSError:
            assert proc.poll() is None and time.time() < deadline, proc.stdout.read() if proc.poll() else "timeout"
            time.sleep(0.2)


@pytest.mark.slow
def test_votes_survive_a_kill_of_the_server(study):
    port = _port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(study.folder, port)
    try:
        p = _call(base + "/api/next")["participant"]
        judged = []
        for _ in range(2):
            j = _call(f"{base}/api/next?participant={p}")
            assert _call(base + "/api/vote", {"participant": p, "image": j["image"], "vote": "not_natural",
                                              "response_ms": 900, "token": j["token"]}) == {"ok": True}
            judged.append(j["image"])
        on_screen = _call(f"{base}/api/next?participant={p}")       # on screen when the server dies
        shown = on_screen["image"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert [r["image"] for r in read_votes(study.votes_path)] == judged, "every acknowledged vote is on disk"
    proc = _start(study.folder, port)
    try:
        assert _call(base + "/api/vote", {"participant": p, "image": shown, "vote": "natural", "response_ms": 1,
                                          "token": on_screen["token"]})["ok"]
        with pytest.raises(urllib.error.HTTPError) as e:   # no second judgement of a photo, restart or not
            _call(base + "/api/vote", {"participant": p, "image": judged[0], "vote": "natural", "response_ms": 1,
                                       "token": "0" * 16})
        assert e.value.code == 409
        while not (j := _call(f"{base}/api/next?participant={p}")).get("finished"):
            _call(base + "/api/vote", {"participant": p, "image": j["image"], "vote": "natural", "response_ms": 1,
                                       "token": j["token"]})
        assert j["done"] == j["total"] == len(study.photos)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/images/..%2Fstudy.json", timeout=10)
        assert e.value.code == 404
    finally:
        proc.terminate()
        proc.wait(10)
    photos = [r["photo"] for r in read_votes(study.votes_path)]
    assert sorted(photos) == sorted(study.photos), "each photo judged once across the crash"


# ---------------------------------------------------------------- the page, in a real browser

@pytest.fixture
def served(study):
    import uvicorn
    from helpers import CHROMIUM, CHROMIUM_FLAGS
    port = _port()
    ballot = Ballot(study)
    srv = uvicorn.Server(uvicorn.Config(create_app(ballot), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        assert thread.is_alive()
        time.sleep(0.05)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield f"http://127.0.0.1:{port}", browser, ballot
        browser.close()
    srv.should_exit = True
    thread.join(10)


def test_the_page_votes_through_a_study_with_the_keyboard(served, study):
    url, browser, ballot = served
    pages = [browser.new_context().new_page() for _ in range(2)]    # two participants at once
    for page in pages:
        page.goto(url + "/")
    pressed = {0: [], 1: []}
    for step in range(len(study.photos)):
        for k, page in enumerate(pages):
            page.wait_for_function("() => document.body.dataset.state === 'ready'")
            image = page.evaluate("() => document.body.dataset.image")
            assert page.evaluate("() => document.getElementById('photo').naturalWidth") > 0
            assert page.get_attribute("#photo", "src") == f"/images/{image}.jpg" and len(image) == 12
            assert page.inner_text("#count") == f"{step} of {len(study.photos)}"
            key = "ArrowLeft" if (step + k) % 2 == 0 else "ArrowRight"
            page.keyboard.press(key)
            pressed[k].append((image, "natural" if key == "ArrowLeft" else "not_natural"))
    for page in pages:
        page.wait_for_function("() => document.body.dataset.state === 'finished'")
        assert "Thank you" in page.inner_text("body") and page.inner_text("#count") == "4 of 4"
        assert "tiny" not in page.content() and "grey" not in page.content(), "no hint of the source"
    rows = read_votes(study.votes_path)
    assert len({r["participant"] for r in rows}) == 2
    for k in pressed:
        mine = [(r["image"], r["vote"]) for r in rows if r["image"] in {i for i, _ in pressed[k]}]
        assert sorted(mine) == sorted(pressed[k])
        assert sorted(ballot.items[i].photo for i, _ in pressed[k]) == sorted(study.photos)
    assert all(0 <= int(r["response_ms"]) < 60_000 for r in rows)


# ---------------------------------------------------------------- the report

def test_wilson_intervals_match_published_values():
    # Wilson (1927) score intervals at 95%, as tabulated by Newcombe (1998), Table I
    for (k, n), (lo, hi) in {(81, 263): (0.2553, 0.3662), (15, 148): (0.0624, 0.1605), (0, 20): (0.0, 0.1611),
                             (1, 29): (0.0061, 0.1718)}.items():
        got = wilson(k, n)
        assert got == pytest.approx((lo, hi), abs=6e-5), (k, n)
    assert wilson(0, 0) == (0.0, 1.0) and wilson(5, 5)[1] == 1.0


def test_the_report_counts_a_hand_made_votes_file(study, tmp_path):
    ids = {(i.photo, i.source): i.id for i in study.items}
    log = VoteLog(study.votes_path)
    votes = {"real": [1, 1, 1, 0], "tiny": [1, 0, 0, 0], "grey": [1, 1, 0, 0]}
    for source, vs in votes.items():
        for n, (photo, v) in enumerate(zip(study.photos, vs)):
            log.append({"time": "t", "participant": f"{n:016x}", "image": ids[(photo, source)], "photo": photo,
                        "source": source, "vote": "natural" if v else "not_natural", "response_ms": 100})
    rows, participants = tally(load_study(study.folder))
    assert participants == 4 and [r.source for r in rows] == ["real", "tiny", "grey"]
    assert [(r.votes, r.natural) for r in rows] == [(4, 3), (4, 1), (4, 2)]
    assert rows[0].rate == 0.75 and (rows[0].low, rows[0].high) == pytest.approx((0.3006, 0.9544), abs=1e-4)
    text = markdown(rows, participants)
    assert "| real | 75.0% | 30.1% - 95.4% | 4 |" in text and "12 votes from 4 participants" in text
    chart(rows, tmp_path / "chart.png")
    assert Image.open(tmp_path / "chart.png").format == "PNG"
    out = subprocess.run([sys.executable, "-m", "chromalift", "study", "--report", str(study.folder)],
                         capture_output=True, text=True, check=True).stdout
    assert "| grey | 50.0% |" in out and (study.folder / "report.png").exists()


@pytest.mark.slow
def test_the_command_prepares_and_refuses_in_one_line(photos, tiny_weights, tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "chromalift", "study", *map(str, a)], capture_output=True,
                                    text=True)
    r = run(photos[0], photos[1], "--model", tiny_weights, "--model", "grey", "--out", tmp_path / "s", "--size", 48,
            "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "2 photos x 3 sources (real, tiny.safetensors, grey) = 6 images" in r.stdout
    for args, message in [((photos[0], "--out", tmp_path / "s", "--model", "grey"), "already exists"),
                          (("--serve", tmp_path), "not a study"),
                          ((tmp_path / "nothing.jpg", "--out", tmp_path / "t", "--model", "grey"), "no such file")]:
        r = run(*args)
        assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert sorted(os.listdir(tmp_path / "s")) == ["images", "study.json"], "the refused runs wrote nothing"
