"""The path without torch (inference/numpy_engine.py, color/lab_np.py) against the PyTorch path it stands in for."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import gradient_rgb
from PIL import Image

from chromalift.cli.main import main
from chromalift.color import lab as color
from chromalift.color import lab_np as color_np
from chromalift.inference.colorizer import Colorizer
from chromalift.inference.numpy_engine import NumpyColorizer, NumpyWeightsError, resize
from chromalift.model.network import ColorizationNet, ModelConfig
from chromalift.model.numpy_network import NumpyNet
from chromalift.model.weights import save_weights

ROOT = Path(__file__).resolve().parents[1]


def _weights(tmp_path: Path, config: ModelConfig, seed: int = 1) -> Path:
    """A random model whose batch norms have non-trivial statistics, so that folding them is tested."""
    torch.manual_seed(seed)
    model = ColorizationNet(config).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.8, 1.6)
                m.bias.uniform_(-0.1, 0.2)
    path = tmp_path / f"w{seed}.safetensors"
    save_weights(path, model, classes=[f"c{i}" for i in range(config.num_classes)])
    return path


def _max_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


@pytest.mark.parametrize(("size", "antialias"), [((7, 9), True), ((40, 33), True), ((100, 3), True),
                                                  ((7, 9), False), ((51, 200), False)])
def test_resize_is_pytorchs_interpolate(size, antialias):
    l = torch.rand(37, 64) * 100
    ours = resize(l.numpy(), size, antialias=antialias)
    theirs = F.interpolate(l[None, None], size=size, mode="bilinear", align_corners=False, antialias=antialias)[0, 0]
    np.testing.assert_allclose(ours, theirs.numpy(), atol=2e-4)


def test_colour_conversions_are_color_py():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    l_t = color.l_from_uint8(torch.from_numpy(rgb)[None])[0, 0].numpy()
    np.testing.assert_allclose(color_np.l_from_uint8(rgb), l_t, atol=1e-4)
    f = rgb / 255.0
    np.testing.assert_allclose(color_np.l_from_rgb(f), color.l_from_rgb(torch.from_numpy(f).permute(2, 0, 1)[None])[0, 0],
                               atol=1e-9)
    ab = rng.uniform(-110, 110, (64, 64, 2)).astype(np.float32)   # many colours out of gamut
    ours = color_np.linear_to_uint8(color_np.lab_to_linear_keep_l(l_t, ab))
    theirs = color.lab_to_uint8_keep_l(torch.from_numpy(l_t)[None, None], torch.from_numpy(ab).permute(2, 0, 1)[None])
    assert _max_diff(ours, theirs[0].numpy()) <= 1


@pytest.mark.parametrize("config", [
    ModelConfig(num_classes=5, width=0.25, global_size=64),
    ModelConfig(num_classes=0, width=0.125, global_size=32, ab_gain=1.3),
    ModelConfig(num_classes=3, width=0.125, global_size=32, ab_bins=6, global_features=False),
    ModelConfig(num_classes=4, width=0.125, global_size=32, ab_bins=6, global_flip="all"),
    ModelConfig(num_classes=4, width=0.125, global_size=32, global_flip="scenes"),
    ModelConfig(num_classes=4, width=0.125, global_size=32, ab_bins=6, ab_keep=(0, 1, 7, 14, 20, 35)),
], ids=["regression", "no-head-gain", "ab-bins-no-global", "flip-all", "flip-scenes", "ab-keep"])
def test_network_matches_pytorch(tmp_path, config):
    path = _weights(tmp_path, config)
    lite, ref = NumpyColorizer.load(path), Colorizer.load(path, device="cpu", backend="torch")
    l_global = torch.rand(1, 1, config.global_size, config.global_size) - 0.5
    prior_t, logits_t = ref.model.global_prior(l_global)
    prior, logits = lite.net.global_prior(l_global[0, 0].numpy())
    np.testing.assert_allclose(prior, prior_t[0].detach().numpy(), rtol=1e-4, atol=1e-4)
    if config.num_classes:
        np.testing.assert_allclose(logits, logits_t[0].detach().numpy(), rtol=1e-4, atol=1e-4)
    prior_only, no_scores = lite.net.global_prior(l_global[0, 0].numpy(), scores=False)
    np.testing.assert_array_equal(prior_only, prior)
    assert no_scores is None
    l = torch.rand(1, 1, 40, 24) - 0.5
    ab_t = ref.model.local_ab(l, prior_t)[0].permute(1, 2, 0).detach().numpy()
    np.testing.assert_allclose(lite.net.local_ab(l[0, 0].numpy(), prior), ab_t, atol=1e-4)


def test_a_net_made_from_a_live_models_state_matches_it():
    """NumpyNet.from_state on ModelConfig.to_dict() (ab_keep a tuple there, a list in a weights file), as the
    speed benchmark builds it."""
    model = ColorizationNet(ModelConfig(num_classes=3, width=0.125, global_size=32, ab_bins=6,
                                        ab_keep=(0, 1, 7, 14, 20, 35))).eval()
    net = NumpyNet.from_state(model.config.to_dict(), {k: v.float().numpy() for k, v in model.state_dict().items()})
    l_global, l = torch.rand(1, 1, 32, 32) - 0.5, torch.rand(1, 1, 24, 40) - 0.5
    with torch.no_grad():
        prior_t, _ = model.global_prior(l_global)
        ab_t = model.local_ab(l, prior_t)[0].permute(1, 2, 0).numpy()
    prior, _ = net.global_prior(l_global[0, 0].numpy())
    np.testing.assert_allclose(net.local_ab(l[0, 0].numpy(), prior), ab_t, atol=1e-4)


def test_a_coarse_blend_matches_pytorch_within_one_level(tmp_path):
    path = _weights(tmp_path, ModelConfig(num_classes=4, width=0.125, global_size=64, coarse_blend=0.5))
    lite, ref = NumpyColorizer.load(path), Colorizer.load(path, device="cpu", backend="torch")
    for shape in ((768, 1024), (600, 300), (37, 301), (3000, 40)):   # two with the second pass, two strips without
        rgb = gradient_rgb(*shape, seed=sum(shape))
        assert _max_diff(lite.colorize(rgb), ref.colorize(rgb)) <= 1


@pytest.mark.parametrize("shape", [(768, 1024), (37, 301), (9, 2000), (3000, 40), (5, 5), (1, 1)])
def test_photos_match_pytorch_within_one_level(tiny_weights, shape):
    rgb = gradient_rgb(*shape, seed=sum(shape))
    lite, ref = NumpyColorizer.load(tiny_weights), Colorizer.load(tiny_weights, device="cpu", backend="torch")
    out = lite.colorize(rgb)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert _max_diff(out, ref.colorize(rgb)) <= 1
    ours, logits = lite.colorize_and_classify(rgb, process_size=None)
    theirs, logits_t = ref.colorize_and_classify(rgb, process_size=None)
    assert _max_diff(ours, theirs) <= 1
    assert [c for c, _ in lite.top_classes(logits)] == [c for c, _ in ref.top_classes(logits_t)]


def test_style_transfer_and_16_bits_match_pytorch(tiny_weights):
    lite, ref = NumpyColorizer.load(tiny_weights), Colorizer.load(tiny_weights, device="cpu", backend="torch")
    rgb, other = gradient_rgb(90, 120, seed=3), gradient_rgb(50, 50, seed=4)[:, ::-1]
    assert _max_diff(lite.colorize(rgb, reference=other), ref.colorize(rgb, reference=other)) <= 1
    deep = rgb / 255.0 + np.linspace(0, 1 / 512, 120)[None, :, None]      # more levels than 8 bits have
    ours, theirs = lite.colorize(deep, bits=16), ref.colorize(deep, bits=16)
    assert ours.dtype == np.uint16 and _max_diff(ours, theirs) <= 257      # one 8-bit level


def test_the_shipped_model_matches_pytorch():
    rgb = gradient_rgb(300, 400, seed=7)
    lite, ref = NumpyColorizer.load(), Colorizer.load(device="cpu", backend="torch")
    assert lite.name == ref.name and lite.note == ref.note
    ours, logits = lite.colorize_and_classify(rgb)
    theirs, logits_t = ref.colorize_and_classify(rgb)
    assert _max_diff(ours, theirs) <= 1 and np.mean(ours != theirs) < 1e-3
    assert [c for c, _ in lite.top_classes(logits)] == [c for c, _ in ref.top_classes(logits_t)]


def test_a_file_that_is_not_weights_is_one_line(tmp_path, tiny_weights):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(NumpyWeightsError, match=r"bad\.safetensors"):
        NumpyColorizer.load(bad)
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file
    with safe_open(str(tiny_weights), "np") as f:
        meta = f.metadata()
    state = load_file(str(tiny_weights))
    state["mid.0.0.weight"] = state["mid.0.0.weight"][:, :3]          # a layer that does not fit the one before
    save_file(state, str(bad), metadata=meta)
    with pytest.raises(NumpyWeightsError, match=r"bad\.safetensors: not a usable weights file"):
        NumpyColorizer.load(bad)
    del state["mid.0.0.weight"]
    save_file(state, str(bad), metadata=meta)
    with pytest.raises(NumpyWeightsError, match=r"bad\.safetensors: not a usable weights file"):
        NumpyColorizer.load(bad)
    state = load_file(str(tiny_weights))
    for setting in ({"ab_bins": 4, "ab_keep": [-1, 3]}, {"global_flip": True}, {"ab_gain": 0}, {"coarse_blend": 1}):
        save_file(state, str(bad), metadata=meta | {"config": json.dumps(json.loads(meta["config"]) | setting)})
        with pytest.raises(NumpyWeightsError, match=r"bad\.safetensors: its model config holds settings"):
            NumpyColorizer.load(bad)


def test_one_photo_is_colorized_without_importing_torch(tmp_path, colour_jpeg):
    out = tmp_path / "out.png"
    code = ("import sys; from chromalift.cli.main import main; rc = main(sys.argv[1:]); "
            "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code, str(colour_jpeg), "-o", str(out), "--show-class"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert Image.open(out).size == (64, 48) and "%" in r.stdout        # the scene classes were printed
    torch_out = tmp_path / "torch.png"
    assert main([str(colour_jpeg), "-o", str(torch_out), "--backend", "torch"]) == 0
    assert _max_diff(np.asarray(Image.open(out)), np.asarray(Image.open(torch_out))) <= 1


def test_numpy_backend_for_a_folder_and_its_refusals(tmp_path, tiny_weights, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(gradient_rgb(30 + i, 40, seed=i)).save(folder / f"p{i}.png")
    assert main([str(folder), "-o", str(tmp_path / "a"), "--model", str(tiny_weights), "--backend", "numpy"]) == 0
    assert main([str(folder), "-o", str(tmp_path / "b"), "--model", str(tiny_weights), "--backend", "torch"]) == 0
    for i in range(3):
        a, b = (np.asarray(Image.open(tmp_path / d / f"p{i}.png")) for d in "ab")
        assert _max_diff(a, b) <= 1
    capsys.readouterr()
    assert main([str(folder / "p0.png"), "-o", str(tmp_path / "c.png"), "--backend", "numpy", "--device", "cuda"]) == 1
    err = capsys.readouterr().err
    assert "--backend numpy runs on the CPU" in err and len(err.strip().splitlines()) == 1
    film = tmp_path / "clip.mp4"
    film.write_bytes(b"not decoded: refused before")
    assert main([str(film), "-o", str(tmp_path / "clip_out.mp4"), "--backend", "numpy"]) == 1
    err = capsys.readouterr().err
    assert "films need the PyTorch backend" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "clip_out.mp4").exists()


def test_auto_picks_numpy_only_for_one_small_photo(tmp_path, colour_jpeg, tiny_weights, monkeypatch):
    import chromalift.inference.numpy_engine
    used = []
    real = chromalift.inference.numpy_engine.NumpyColorizer.load
    monkeypatch.setattr(chromalift.inference.numpy_engine.NumpyColorizer, "load", lambda *a: used.append(a) or real(*a))
    second = tmp_path / "second.jpg"
    second.write_bytes(colour_jpeg.read_bytes())
    cases = [([], 1), (["--process-size", "0"], 0), (["--process-size", "2048"], 0), (["--model", str(tiny_weights)], 0),
             (["--device", "cpu"], 1), (["--backend", "torch"], 0), ([str(second)], 0)]
    for i, (extra, lite) in enumerate(cases):
        used.clear()
        out = tmp_path / f"out{i}"
        assert main([str(colour_jpeg), *extra, "-o", str(out) + ("" if str(second) in extra else ".png")]) == 0
        assert len(used) == lite, extra


def test_bands_on_several_threads_give_the_same_photo(tiny_weights, monkeypatch):
    import chromalift.inference.numpy_engine
    lite, rgb = NumpyColorizer.load(tiny_weights), gradient_rgb(203, 301, seed=5)
    deep = rgb / 255.0
    whole, whole16 = lite.colorize(rgb), lite.colorize(deep, bits=16)
    monkeypatch.setattr(chromalift.inference.numpy_engine, "BAND_PIXELS", 301 * 7)      # 29 bands of 7 rows
    assert np.array_equal(lite.colorize(rgb), whole)
    assert np.array_equal(lite.colorize(deep, bits=16), whole16)
