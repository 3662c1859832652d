"""Weights round trips and clear errors for files that are not ours."""
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from chromalift.model.network import ColorizationNet, ModelConfig
from chromalift.model.weights import CheckpointError, clean_state_dict, load_weights, save_weights
from chromalift.train.checkpoint import load_checkpoint, save_checkpoint

CONFIG = ModelConfig(num_classes=4, width=0.125, global_size=32)


@pytest.mark.parametrize("half", [False, True])
def test_weights_round_trip(tmp_path, half):
    model = ColorizationNet(CONFIG).eval()
    save_weights(tmp_path / "w.safetensors", model, classes=list("abcd"), half=half, info={"step": 7})
    loaded, classes, info = load_weights(tmp_path / "w.safetensors")
    assert loaded.config == CONFIG and classes == list("abcd") and info == {"step": 7}
    for k, v in model.state_dict().items():
        assert torch.allclose(loaded.state_dict()[k].float(), v.float(), atol=1e-3 if half else 0)


def test_foreign_and_mismatched_weights_are_refused(tmp_path):
    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="not chromalift weights"):
        load_weights(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="not a safetensors weights file"):
        load_weights(tmp_path / "junk.safetensors")
    with pytest.raises(CheckpointError, match="no such weights file"):
        load_weights(tmp_path / "missing.safetensors")
    # weights of one config described as another
    model = ColorizationNet(CONFIG)
    save_weights(tmp_path / "w.safetensors", model)
    from safetensors import safe_open
    with safe_open(str(tmp_path / "w.safetensors"), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    meta["config"] = meta["config"].replace('"width": 0.125', '"width": 0.25')
    save_file(tensors, str(tmp_path / "lying.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="do not match their config"):
        load_weights(tmp_path / "lying.safetensors")


def test_training_checkpoint_round_trip_without_pickle(tmp_path):
    state = {"model": {"module._orig_mod.w": torch.ones(2)}, "step": 3, "rng": torch.get_rng_state()}
    save_checkpoint(tmp_path / "c.pt", state)
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert loaded["step"] == 3 and clean_state_dict(loaded["model"]).keys() == {"w"}
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a chromalift training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def _training_checkpoint(path, model: ColorizationNet):
    save_checkpoint(path, {"model_config": model.config.to_dict(), "model": model.state_dict(), "step": 5, "classes": []})
    return path


def _weights_via_cli(ckpt, flag: str, values: tuple[str, ...]) -> list[ColorizationNet]:
    """`colorize weights CKPT OUT FLAG V` for each value; the weights it wrote, loaded back."""
    from chromalift.cli.main import main
    outs = [ckpt.parent / f"w{v}.safetensors" for v in values]
    for v, out in zip(values, outs):
        assert main(["weights", str(ckpt), str(out), flag, v]) == 0
    return [load_weights(out)[0] for out in outs]


def test_ab_gain_is_stored_with_the_weights_and_scales_the_colour(tmp_path):
    from chromalift.cli.main import main
    torch.manual_seed(0)
    model = ColorizationNet(CONFIG)
    with torch.no_grad():
        model.colorization.layers[-2].bias.copy_(torch.tensor([0.3, 0.7]))   # a definite colour
    ckpt = _training_checkpoint(tmp_path / "c.pt", model)
    plain, strong = _weights_via_cli(ckpt, "--ab-gain", ("1.0", "1.5"))
    assert strong.config.ab_gain == 1.5 and plain.config.ab_gain == 1.0
    l = torch.rand(1, 1, 32, 32) - 0.5
    a, b = (m.local_ab(l, m.global_prior(l)[0]) - 0.5 for m in (plain, strong))
    assert torch.allclose(b, (a * 1.5).clamp(-0.5, 0.5), atol=1e-5)
    assert main(["weights", str(ckpt), str(tmp_path / "bad.safetensors"), "--ab-gain", "9"]) == 1


def test_ab_temperature_is_stored_with_bin_weights_and_sharpens_their_colour(tmp_path, capsys):
    from dataclasses import replace

    from chromalift.cli.main import main
    torch.manual_seed(0)
    ckpt = _training_checkpoint(tmp_path / "c.pt", ColorizationNet(replace(CONFIG, ab_bins=4)))
    soft, sharp = _weights_via_cli(ckpt, "--ab-temperature", ("0.38", "0.1"))
    assert sharp.config.ab_temperature == 0.1 and soft.config.ab_temperature == 0.38
    l = torch.rand(1, 1, 32, 32) - 0.5
    with torch.no_grad():
        a, b = (m.local_ab(l, m.global_prior(l)[0]) - 0.5 for m in (soft, sharp))
    assert float(b.norm(dim=1).mean()) > float(a.norm(dim=1).mean()), "a lower temperature moves colour away from grey"
    # regression weights have no temperature: one line, no file
    regression = _training_checkpoint(tmp_path / "r.pt", ColorizationNet(CONFIG))
    capsys.readouterr()
    assert main(["weights", str(regression), str(tmp_path / "r.safetensors"), "--ab-temperature", "0.2"]) == 1
    err = capsys.readouterr().err
    assert "ab bins" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "r.safetensors").exists()


def test_global_flip_is_stored_with_the_weights_and_read_by_colorize(tmp_path, colour_jpeg, capsys):
    from PIL import Image

    from chromalift.cli.main import main
    from chromalift.inference.colorizer import Colorizer
    torch.manual_seed(0)
    ckpt = _training_checkpoint(tmp_path / "c.pt", ColorizationNet(CONFIG))
    assert main(["weights", str(ckpt), str(tmp_path / "off.safetensors")]) == 0
    for how in ("scenes", "all"):
        assert main(["weights", str(ckpt), str(tmp_path / f"{how}.safetensors"), "--global-flip", how]) == 0
    assert [load_weights(tmp_path / f"{n}.safetensors")[0].config.global_flip for n in ("off", "scenes", "all")] \
        == ["off", "scenes", "all"]
    rgb = np.asarray(Image.open(colour_jpeg).convert("RGB"))
    c = Colorizer.load(tmp_path / "all.safetensors", device="cpu")
    assert torch.allclose(c.prior(rgb)[0], c.prior(np.ascontiguousarray(rgb[:, ::-1]))[0], atol=1e-5)
    # "scenes" changes the scene scores alone: colorize, which asks for no scores, gives "off"'s colours exactly
    off, scenes = (Colorizer.load(tmp_path / f"{n}.safetensors", device="cpu") for n in ("off", "scenes"))
    assert np.array_equal(scenes.colorize(rgb), off.colorize(rgb))
    out = tmp_path / "out.png"
    assert main([str(colour_jpeg), "-o", str(out), "--model", str(tmp_path / "all.safetensors")]) == 0 and out.exists()
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["weights", str(ckpt), str(tmp_path / "bad.safetensors"), "--global-flip", "both"])
    assert "invalid choice" in capsys.readouterr().err and not (tmp_path / "bad.safetensors").exists()


def test_weights_take_other_settings_from_weights_and_never_write_the_source(tmp_path, capsys):
    from dataclasses import replace

    from safetensors import safe_open

    from chromalift.cli.main import main
    from chromalift.model.config import DEFAULT_WEIGHTS
    torch.manual_seed(0)
    model = ColorizationNet(replace(CONFIG, ab_bins=4, ab_gain=1.2, ab_temperature=0.3, global_flip="scenes"))
    src = tmp_path / "src.safetensors"
    save_weights(src, model.eval(), classes=["a"], half=True)
    before = src.read_bytes()
    assert main(["weights", str(src), str(tmp_path / "all.safetensors"), "--global-flip", "all"]) == 0
    c = load_weights(tmp_path / "all.safetensors")[0].config
    assert (c.global_flip, c.ab_gain, c.ab_temperature) == ("all", 1.2, 0.3), "what is not asked for stays"
    with safe_open(str(tmp_path / "all.safetensors"), "pt") as f:
        assert f.get_slice("colorization.layers.6.weight").get_dtype() == "F16", "float16 weights stay float16"
    capsys.readouterr()
    assert main(["weights", str(src), str(src), "--overwrite", "--ab-gain", "1.0"]) == 1
    assert "is the source" in capsys.readouterr().err and src.read_bytes() == before
    assert main(["weights", "shipped", str(tmp_path / "s.safetensors"), "--global-flip", "off"]) == 0
    shipped, ours = (load_weights(p)[0] for p in (DEFAULT_WEIGHTS, tmp_path / "s.safetensors"))
    assert ours.config == replace(shipped.config, global_flip="off")
    assert all(torch.equal(a, b) for a, b in zip(shipped.state_dict().values(), ours.state_dict().values()))


def test_coarse_blend_adds_a_pass_at_the_global_size_for_larger_photos_only(tmp_path, capsys):
    from dataclasses import replace

    import torch.nn.functional as F

    from chromalift.cli.main import main
    from chromalift.inference.colorizer import Colorizer
    torch.manual_seed(0)
    model = ColorizationNet(replace(CONFIG, global_size=64))
    with torch.no_grad():   # batch-norm statistics that let the local path's colours vary over the photo
        model.train()(torch.rand(8, 1, 64, 64) * 2 - 1)
    ckpt = _training_checkpoint(tmp_path / "c.pt", model.eval())
    assert main(["weights", str(ckpt), str(tmp_path / "one.safetensors")]) == 0
    assert main(["weights", str(ckpt), str(tmp_path / "two.safetensors"), "--coarse-blend", "0.4"]) == 0
    one, two = (Colorizer.load(tmp_path / f"{n}.safetensors", device="cpu") for n in ("one", "two"))
    assert two.model.config.coarse_blend == 0.4
    prior = one.prior(np.zeros((8, 8, 3), np.uint8))[0]
    l = torch.rand(1, 1, 77, 128) * 100           # the local path sees it whole at process size 128
    fine = one.predict_ab_small(l, prior, process_size=128)
    at_global = one.predict_ab_small(l, prior, process_size=64)    # the same photo at the global size (38 x 64)
    expected = 0.6 * fine + 0.4 * F.interpolate(at_global, size=fine.shape[-2:], mode="bilinear", align_corners=False)
    blended = two.predict_ab_small(l, prior, process_size=128)
    assert blended.shape == fine.shape and torch.allclose(blended, expected, atol=1e-3)
    assert not torch.allclose(blended, fine, atol=1e-2), "the second pass changes the colours"
    small = torch.rand(1, 1, 48, 64) * 100        # no larger than the global size: one pass, the same colours
    assert torch.equal(two.predict_ab_small(small, prior), one.predict_ab_small(small, prior))
    capsys.readouterr()
    for bad in ("1", "-0.1"):
        assert main(["weights", str(ckpt), str(tmp_path / "bad.safetensors"), "--coarse-blend", bad]) == 1
        err = capsys.readouterr().err
        assert "coarse_blend" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "bad.safetensors").exists()
