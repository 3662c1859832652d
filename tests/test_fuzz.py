"""Fuzzing (Hypothesis) over image headers and command lines: whatever the bytes or the arguments, the
result is a photo, one ImageError, or an exit status with a message; never a traceback. Runs in CI in
well under a minute (fixed example counts, no deadline: the machine is shared)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from helpers import gradient_rgb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from chromalift.cli.main import main
from chromalift.io.photos import ImageError, decode_photo

FORMATS = ["PNG", "JPEG", "GIF", "TIFF", "BMP", "WEBP"]


def _encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(gradient_rgb(12, 16)).save(buf, format=fmt)
    return buf.getvalue()


SEEDS = {fmt: _encoded(fmt) for fmt in FORMATS}


@pytest.mark.filterwarnings("ignore::UserWarning")     # Pillow's notes on damaged TIFF tags
@settings(max_examples=300, deadline=None, derandomize=True)
@given(fmt=st.sampled_from(FORMATS),
       edits=st.lists(st.tuples(st.integers(0, 63), st.integers(0, 255)), max_size=6),
       cut=st.one_of(st.none(), st.integers(0, 400)))
def test_mutated_headers_give_a_photo_or_one_image_error(fmt, edits, cut):
    data = bytearray(SEEDS[fmt])
    for pos, value in edits:               # the header lives in the first bytes of every format
        if pos < len(data):
            data[pos] = value
    if cut is not None:
        data = data[:cut]
    try:
        photo = decode_photo(bytes(data), name="fuzz", max_pixels=4_000_000)
    except ImageError as e:
        assert str(e).startswith("fuzz: ") and "\n" not in str(e)
        return
    h, w = photo.rgb.shape[:2]
    assert h * w <= 4_000_000 and photo.rgb.dtype == np.float32


WORDS = ["photo.png", "missing.jpg", "folder", "-o", "out.png", "out.xyz", "outdir", "--format", "png", "xyz",
         "--overwrite", "--process-size", "0", "-5", "64", "--max-pixels", "10", "1e9", "--reference",
         "--backend", "torch", "--prior", "frame", "--batch", "0", "--steady", "2", "--device", "cpu", "tpu",
         "evaluate", "prepare", "weights", "--limit", "1", "--size", "8", "--half", "", "..", "photo.png/x"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    Image.fromarray(gradient_rgb(20, 24)).save(root / "photo.png")
    (root / "folder").mkdir()
    Image.fromarray(gradient_rgb(16, 16, seed=1)).save(root / "folder" / "a.jpg")
    return root


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=7))
def test_any_command_line_ends_in_an_exit_status(words, workdir, tiny_weights, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    before = {p: p.read_bytes() for p in (workdir / "photo.png", workdir / "folder" / "a.jpg")}
    args = words + (["--model", str(tiny_weights)] if words[0] not in ("prepare", "weights") else [])
    try:
        code = main(args)
    except SystemExit as e:                # argparse: usage errors (2) and --help (0)
        code = e.code
    assert code in (0, 1, 2, 130)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert all(p.read_bytes() == data for p, data in before.items())   # inputs never touched
