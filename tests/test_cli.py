"""The `colorize` command end to end, as a user runs it."""
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import KODAK, gradient_rgb
from PIL import Image

from chromalift.cli.main import main
from chromalift.color.lab import rgb_to_lab


def lab_l(path) -> np.ndarray:
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
    return rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1))[0].numpy()


def test_one_photo_default_output_beside_it(tmp_path, colour_jpeg, tiny_weights, capsys):
    assert main([str(colour_jpeg), "--model", str(tiny_weights)]) == 0
    out = tmp_path / "colour_color.jpg"
    assert out.exists() and Image.open(out).size == (64, 48)
    assert str(out) in capsys.readouterr().out


@pytest.mark.skipif(not KODAK.is_dir(), reason="needs ../shared/data/kodak24")
def test_kodak_photo_keeps_size_and_luminance(tmp_path, tiny_weights):
    src = KODAK / "kodim05.png"
    out = tmp_path / "k.png"
    assert main([str(src), "-o", str(out), "--model", str(tiny_weights)]) == 0
    assert Image.open(out).size == Image.open(src).size
    result = np.asarray(Image.open(out).convert("RGB"), dtype=np.float32)
    truth = np.asarray(Image.open(src).convert("RGB"), dtype=np.float32)
    assert np.abs(result - truth).mean() > 1.0                 # it did change the colours ...
    diff = np.abs(lab_l(out) - lab_l(src))
    assert diff.max() < 1.0 and diff.mean() < 0.2              # ... but not the luminance (8-bit rounding)


def test_folder_recursive_mirror_and_failures_summary(tmp_path, tiny_weights, capsys):
    src = tmp_path / "album"
    (src / "1950s" / "summer").mkdir(parents=True)
    Image.fromarray(gradient_rgb(20, 30)).save(src / "a.jpg")
    Image.fromarray(gradient_rgb(33, 17)[..., 0]).save(src / "1950s" / "b.png")
    Image.fromarray(np.dstack([gradient_rgb(9, 9), np.full((9, 9), 128, np.uint8)])).save(src / "1950s" / "summer" / "c.png")
    (src / "1950s" / "broken.jpg").write_text("not an image")
    out = tmp_path / "out"
    code = main([str(src), "-o", str(out), "--model", str(tiny_weights)])
    assert code == 1                                                  # one failure -> non-zero exit
    assert (out / "a.jpg").exists() and (out / "1950s" / "b.png").exists()
    c = Image.open(out / "1950s" / "summer" / "c.png")
    assert c.mode == "RGBA" and np.all(np.asarray(c)[..., 3] == 128)  # alpha kept as it was
    captured = capsys.readouterr()
    assert "colorized 3 of 4 photos; 1 failed" in captured.out and "broken.jpg" in captured.out
    assert "Traceback" not in captured.err


def test_never_overwrites_and_never_writes_over_input(tmp_path, colour_jpeg, tiny_weights, capsys):
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    assert main([str(colour_jpeg), "-o", str(out), "--model", str(tiny_weights)]) == 1
    assert out.read_bytes() == b"precious"
    assert "already exists" in capsys.readouterr().err
    assert main([str(colour_jpeg), "-o", str(out), "--model", str(tiny_weights), "--overwrite"]) == 0
    assert Image.open(out).size == (64, 48)
    before = colour_jpeg.read_bytes()
    assert main([str(colour_jpeg), "-o", str(colour_jpeg), "--model", str(tiny_weights), "--overwrite"]) == 1
    assert colour_jpeg.read_bytes() == before


def test_reference_photo_changes_colours(tmp_path, colour_jpeg, tiny_weights):
    ref = tmp_path / "ref.png"
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(ref)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert main([str(colour_jpeg), "-o", str(a), "--model", str(tiny_weights)]) == 0
    assert main([str(colour_jpeg), "-o", str(b), "--model", str(tiny_weights), "--reference", str(ref)]) == 0
    assert np.abs(np.asarray(Image.open(a), float) - np.asarray(Image.open(b), float)).mean() > 0.1


@pytest.mark.parametrize("size", [(7, 5), (517, 333)])
def test_tiny_and_odd_sizes(tmp_path, tiny_weights, size):
    h, w = size
    src = tmp_path / "odd.png"
    Image.fromarray(gradient_rgb(h, w)).save(src)
    assert main([str(src), "-o", str(tmp_path / "o.png"), "--model", str(tiny_weights)]) == 0
    assert Image.open(tmp_path / "o.png").size == (w, h)


@pytest.mark.slow
def test_large_photo_within_memory(tmp_path, tiny_weights):
    import resource
    src = tmp_path / "big.jpg"
    Image.fromarray(np.tile(gradient_rgb(300, 400), (10, 10, 1))).save(src, quality=80)   # 4000x3000
    assert main([str(src), "-o", str(tmp_path / "o.jpg"), "--model", str(tiny_weights)]) == 0
    assert Image.open(tmp_path / "o.jpg").size == (4000, 3000)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    assert peak_gib < 4.0    # the bound stated in the README for a 12 MP photo


@pytest.mark.parametrize("case", ["missing", "text", "empty", "bad-model", "unwritable"])
def test_errors_are_one_line_no_traceback(tmp_path, colour_jpeg, tiny_weights, capsys, case):
    args = [str(colour_jpeg), "--model", str(tiny_weights), "-o", str(tmp_path / "o.png")]
    if case == "missing":
        args[0] = str(tmp_path / "nope.jpg")
    elif case == "text":
        (tmp_path / "t.jpg").write_text("hello")
        args[0] = str(tmp_path / "t.jpg")
    elif case == "empty":
        (tmp_path / "e.jpg").write_bytes(b"")
        args[0] = str(tmp_path / "e.jpg")
    elif case == "bad-model":
        (tmp_path / "m.safetensors").write_text("junk")
        args[2] = str(tmp_path / "m.safetensors")
    elif case == "unwritable":
        (tmp_path / "f").write_text("a file, not a folder")
        args[-1] = str(tmp_path / "f" / "o.png")
    code = main(args)
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.startswith("colorize: error:")]
    assert code != 0 and len(lines) == 1 and "Traceback" not in err


def test_shipped_model_colorizes_the_sample_with_no_flags(tmp_path):
    from chromalift.inference.colorizer import DEFAULT_WEIGHTS
    assert DEFAULT_WEIGHTS.exists() and DEFAULT_WEIGHTS.stat().st_size < 50e6
    sample = Path(__file__).resolve().parents[1] / "chromalift" / "assets" / "sample_bw.jpg"
    out = tmp_path / "sample_color.jpg"
    assert main([str(sample), "-o", str(out)]) == 0
    rgb = np.asarray(Image.open(out).convert("RGB"), dtype=np.float32)
    assert Image.open(out).size == Image.open(sample).size
    chroma = np.abs(rgb - rgb.mean(axis=2, keepdims=True)).mean()
    assert chroma > 2.0                                     # a grey photo came out in colour


def test_help_and_version_answer_without_importing_torch():
    import subprocess
    import sys
    code = ("import sys\nfrom chromalift.cli.main import main\n"
            "for argv in (['--help'], ['evaluate', '--help'], ['prepare', '--help'], ['train', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "main(['--version'])\nprint('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip().endswith("False"), r.stderr
    assert "usage: colorize" in r.stdout and "colorize 0." in r.stdout


def test_a_missing_extra_is_named_with_the_command_to_install_it(tmp_path, capsys, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("skimage", "onnx") else real(name, *a))
    assert main(["evaluate", str(tmp_path)]) == 1
    assert "colorize evaluate needs the eval extra (skimage is missing): pip install 'chromalift[eval]'" in capsys.readouterr().err
    assert main(["export", "--onnx", str(tmp_path / "o")]) == 1
    assert "pip install 'chromalift[onnx]'" in capsys.readouterr().err
