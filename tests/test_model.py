import pytest
import torch

from chromalift.model.network import ColorizationNet, ModelConfig, count_macs

# The paper's table: (input channels, output channels) of every 3x3 convolution, FC and 1x1 layer.
LOW = [(1, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512)]
MID = [(512, 512), (512, 256)]
GLOBAL_CONV = [(512, 512)] * 4
GLOBAL_FC = [(512 * 7 * 7, 1024), (1024, 512), (512, 256)]
FUSION = [(512, 256)]
COLOR = [(256, 128), (128, 64), (64, 64), (64, 32)]
COLOR_OUT = (32, 2)
CLASSIFY = [(512, 256)]


def paper_parameter_count(classes: int) -> int:
    """Weights of every layer, plus 2 per channel for batch norm (scale, shift) after each hidden layer,
    plus biases on the two output layers (hidden layers need none before batch norm)."""
    conv = lambda layers: sum(9 * i * o + 2 * o for i, o in layers)
    dense = lambda layers: sum(i * o + 2 * o for i, o in layers)
    n = conv(LOW) + conv(MID) + conv(GLOBAL_CONV) + dense(GLOBAL_FC) + dense(FUSION) + conv(COLOR)
    n += 9 * COLOR_OUT[0] * COLOR_OUT[1] + COLOR_OUT[1]
    n += dense(CLASSIFY) + 256 * classes + classes
    return n


def test_paper_configuration_parameter_count():
    model = ColorizationNet(ModelConfig(num_classes=205))
    n = sum(p.numel() for p in model.parameters())
    assert n == paper_parameter_count(205)
    assert 42.0e6 < n < 42.8e6   # the paper's network is about 42.4 M parameters


def test_paper_configuration_shapes():
    model = ColorizationNet(ModelConfig(num_classes=205)).eval()
    with torch.no_grad():
        ab, logits = model(torch.zeros(2, 1, 224, 224))
        assert ab.shape == (2, 2, 112, 112) and logits.shape == (2, 205)
        low = model.low(torch.zeros(1, 1, 224, 224))
        assert low.shape == (1, 512, 28, 28)
        g512, prior = model.glob(low)
        assert g512.shape == (1, 512) and prior.shape == (1, 256)
        assert model.glob.convs(low).shape == (1, 512, 7, 7)
        assert model.local_ab(torch.zeros(1, 1, 64, 96), prior).shape == (1, 2, 32, 48)
    assert ((ab >= 0) & (ab <= 1)).all()   # Sigmoid output


@pytest.mark.parametrize("config", [ModelConfig(num_classes=10, width=0.25, global_size=64),
                                    ModelConfig(num_classes=0, width=0.5, global_size=32),
                                    ModelConfig(num_classes=100, width=0.5, global_size=128)])
def test_variants_forward_backward(config):
    model = ColorizationNet(config)
    x = torch.randn(3, 1, config.global_size, config.global_size)
    ab, logits = model(x)
    assert ab.shape == (3, 2, config.global_size // 2, config.global_size // 2)
    assert (logits is None) == (config.num_classes == 0)
    loss = ab.mean() + (logits.mean() if logits is not None else 0)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_forward_rejects_other_sizes_and_bad_configs():
    model = ColorizationNet(ModelConfig(num_classes=2, width=0.125, global_size=32))
    with pytest.raises(ValueError, match="32x32"):
        model(torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="multiple of 32"):
        ModelConfig(global_size=100)
    with pytest.raises(ValueError, match="width"):
        ModelConfig(width=0)


def test_mac_count_matches_hand_count_for_low_level_path():
    config = ModelConfig(num_classes=205)
    model = ColorizationNet(config)
    macs = count_macs(model, 224, 224)
    # the global FC layers alone: 25088*1024 + 1024*512 + 512*256, plus classifier 512*256 + 256*205
    fc = 25088 * 1024 + 1024 * 512 + 512 * 256 + 512 * 256 + 256 * 205
    # first layer of the low-level network at 224 -> 112: 112*112*64 outputs * 9 MACs, twice (two paths)
    first = 2 * 112 * 112 * 64 * 9
    assert macs > fc + first
    assert 2 * macs == pytest.approx(24.58e9, rel=0.01)   # 24.6 GFLOP for one 224x224 photo, both paths


def test_ab_bins_head_decodes_by_the_annealed_mean():
    torch.manual_seed(0)
    config = ModelConfig(num_classes=3, width=0.125, global_size=32, ab_bins=8)
    model = ColorizationNet(config).eval().requires_grad_(False)
    l = torch.rand(2, 1, 32, 32) - 0.5
    head, _ = model(l)
    assert head.shape == (2, 64, 16, 16)                          # one logit per bin of the 8 x 8 grid
    prior, _ = model.global_prior(l)
    ab = model.local_ab(l, prior)
    assert ab.shape == (2, 2, 16, 16) and float(ab.min()) >= 0 and float(ab.max()) <= 1
    # a sharp distribution on one bin decodes to that bin's centre; a flat one to the middle of the grid
    logits = torch.full((1, 64, 1, 1), -50.0)
    logits[0, 3 * 8 + 5] = 50.0
    assert torch.allclose(model.colorization.decode(logits)[0, :, 0, 0], torch.tensor([3.5 / 8, 5.5 / 8]))
    assert torch.allclose(model.colorization.decode(torch.zeros(1, 64, 1, 1))[0, :, 0, 0], torch.tensor([0.5, 0.5]))


def test_without_global_features_the_prior_changes_nothing():
    torch.manual_seed(0)
    model = ColorizationNet(ModelConfig(num_classes=3, width=0.125, global_size=32, global_features=False)).eval()
    l = torch.rand(1, 1, 32, 32) - 0.5
    a = model.local_ab(l, torch.randn(1, model.config.ch(256)))
    b = model.local_ab(l, torch.randn(1, model.config.ch(256)))
    assert torch.equal(a, b)


def test_global_flip_averages_the_photo_and_its_mirror_image():
    from dataclasses import replace
    torch.manual_seed(0)
    plain = ColorizationNet(ModelConfig(num_classes=3, width=0.125, global_size=32))
    for m in plain.modules():   # batch-norm statistics of real activations, or an untrained net's output vanishes
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None
    with torch.no_grad():
        for _ in range(4):
            plain(torch.rand(8, 1, 32, 32) - 0.5)
    plain.eval()
    flips = {}
    for how in ("scenes", "all"):
        flips[how] = ColorizationNet(replace(plain.config, global_flip=how)).eval()
        flips[how].load_state_dict(plain.state_dict())
    l = torch.rand(2, 1, 32, 32) - 0.5
    with torch.no_grad():
        g512 = (plain.glob.features(plain.low(l)) + plain.glob.features(plain.low(l.flip(-1)))) / 2
        own_prior, _ = plain.global_prior(l)
        assert not torch.allclose(plain.global_prior(l.flip(-1))[0], own_prior, rtol=0.05, atol=1e-3)
        for how, model in flips.items():
            prior, logits = model.global_prior(l)
            assert torch.allclose(logits, plain.classification(g512), atol=1e-5)
            # "all": the prior too is the mean's, so a scene reads the same whichever way it faces
            assert torch.allclose(prior, plain.glob.fc3(g512) if how == "all" else own_prior, atol=1e-5)
            mirrored = model.global_prior(l.flip(-1))
            assert torch.allclose(mirrored[1], logits, atol=1e-5)
            assert torch.allclose(mirrored[0], prior, atol=1e-5) == (how == "all")
            assert torch.equal(model(l)[0], plain(l)[0])   # training's forward is the paper's, flip or not
            # the prior alone (scores=False): "scenes" needs no mirror image for it, "all" still does
            seen = []
            hook = model.low.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0].shape[0]))
            prior_only, no_scores = model.global_prior(l, scores=False)
            hook.remove()
            assert torch.allclose(prior_only, prior, atol=1e-5) and seen == [2 if how == "scenes" else 4]
            assert no_scores is None, "no single-view scores passed off as the weights' own"
    with pytest.raises(ValueError, match="global_flip"):
        ModelConfig(global_flip="yes")



def test_a_training_step_counts_the_shared_low_level_features_once():
    """forward() runs the low-level network once for both paths; an inference runs it for each."""
    model = ColorizationNet(ModelConfig(num_classes=10, width=0.5, global_size=128))
    inference, training = count_macs(model, 128, 128), count_macs(model, 128, 128, training=True)
    low, x = 0, torch.zeros(1, 1, 128, 128)
    for layer in model.low.modules():
        if isinstance(layer, torch.nn.Conv2d):
            x = layer(x)
            low += x[0].numel() * layer.kernel_size[0] * layer.kernel_size[1] * layer.in_channels
    assert inference - training == low > 0
