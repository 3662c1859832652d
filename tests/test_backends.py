"""Inference engines agree with the plain model; the ONNX export takes any size and matches PyTorch."""
import numpy as np
import onnxruntime as ort
import pytest
import torch

from chromalift.cli.main import main
from chromalift.inference.engines import OnnxEngine, TorchEngine, fuse_batchnorm
from chromalift.model.network import ColorizationNet, ModelConfig
from chromalift.model.weights import load_weights, recalibrated


def test_fused_batchnorm_matches_the_model(tiny_weights):
    model = load_weights(tiny_weights)[0]
    fused = fuse_batchnorm(model)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in fused.modules())
    l, lg = torch.rand(2, 1, 48, 40) - 0.5, torch.rand(2, 1, 32, 32) - 0.5
    with torch.no_grad():
        prior, logits = model.global_prior(lg)
        prior_f, logits_f = fused.global_prior(lg)
        assert torch.allclose(prior, prior_f, atol=1e-4) and torch.allclose(logits, logits_f, atol=1e-4)
        assert torch.allclose(model.local_ab(l, prior), fused.local_ab(l, prior), atol=1e-5)


def test_a_bin_heads_temperature_is_folded_into_its_last_layer():
    torch.manual_seed(0)
    model = ColorizationNet(ModelConfig(num_classes=3, width=0.125, global_size=32, ab_bins=6, ab_temperature=0.25,
                                        ab_gain=1.2)).eval()
    fused = fuse_batchnorm(model)
    assert fused.colorization.temperature == 1.0 and model.colorization.temperature == 0.25, "the model is untouched"
    l, lg = torch.rand(2, 1, 48, 40) - 0.5, torch.rand(2, 1, 32, 32) - 0.5
    with torch.no_grad():
        prior = model.global_prior(lg)[0]
        assert torch.allclose(model.local_ab(l, prior), fused.local_ab(l, prior), atol=1e-5)


@pytest.mark.parametrize("flip", ["off", "scenes", "all"])
def test_onnx_engine_matches_pytorch_at_several_sizes(tiny_weights, tmp_path, flip):
    model = recalibrated(load_weights(tiny_weights)[0], global_flip=flip)
    onnx = OnnxEngine(model, cache=tmp_path)
    ref = TorchEngine(model, torch.device("cpu"))
    lg = torch.rand(1, 1, 32, 32) - 0.5
    prior, logits = ref.global_prior(lg)
    prior_o, logits_o = onnx.global_prior(lg)
    assert torch.allclose(prior, prior_o, atol=1e-4) and torch.allclose(logits, logits_o, atol=1e-4)
    prior_alone, no_scores = onnx.global_prior(lg, scores=False)
    assert no_scores is None and torch.allclose(prior_alone, ref.global_prior(lg, scores=False)[0], atol=1e-4)
    # the prior alone skips the mirror image where only the scores take it ("scenes"), as the torch engine does
    assert (onnx.prior_session is not None) == (flip == "scenes")
    for h, w in [(64, 64), (120, 200), (8, 16)]:
        l = torch.rand(1, 1, h, w) - 0.5
        out = onnx.local_ab(l, prior)
        assert out.shape == (1, 2, h // 2, w // 2)
        assert torch.allclose(out, ref.local_ab(l, prior), atol=1e-4)
    assert len(list(tmp_path.iterdir())) == 1          # exported once, cached by weights
    OnnxEngine(model, cache=tmp_path)
    assert len(list(tmp_path.iterdir())) == 1


def test_export_command_writes_models_with_dynamic_size(tiny_weights, tmp_path):
    assert main(["export", "--onnx", str(tmp_path / "onnx"), "--model", str(tiny_weights)]) == 0
    glob = ort.InferenceSession(str(tmp_path / "onnx" / "global.onnx"))
    local = ort.InferenceSession(str(tmp_path / "onnx" / "local.onnx"))
    prior = glob.run(None, {"l_global": np.zeros((1, 1, 32, 32), np.float32)})[0]
    for h, w in [(16, 24), (96, 40)]:
        ab = local.run(None, {"l": np.zeros((1, 1, h, w), np.float32), "prior": prior})[0]
        assert ab.shape == (1, 2, h // 2, w // 2)


def test_colorize_with_onnx_backend_equals_torch(tmp_path, colour_jpeg, tiny_weights, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert main([str(colour_jpeg), "-o", str(a), "--model", str(tiny_weights), "--backend", "torch"]) == 0
    assert main([str(colour_jpeg), "-o", str(b), "--model", str(tiny_weights), "--backend", "onnx"]) == 0
    from PIL import Image
    diff = np.abs(np.asarray(Image.open(a), int) - np.asarray(Image.open(b), int))
    assert diff.max() <= 2
