"""A head over only the ab bins photos use (`ModelConfig.ab_keep`): chosen from the training photos, cut
from trained weights without changing their colours, stored in the weights, trained, and read by every engine.
And taking back --rebalance at inference (`colorize weights --ab-logit-adjust`): the mean loss weight of each
head bin from the training photos, and a head whose bias divides each bin's probability by it; or adding it
at inference to weights trained without it (`--ab-rebalance S`), a head whose bias multiplies by it."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import make_photo_folder

from chromalift.color.lab import rgb_to_lab
from chromalift.model.network import ColorizationNet, ModelConfig, ab_bin_centres
from chromalift.model.weights import (
    HEAD,
    CheckpointError,
    config_from,
    load_weights,
    logit_adjusted,
    pruned,
    rebalanced,
    save_weights,
)
from chromalift.train.checkpoint import load_checkpoint, save_checkpoint
from chromalift.train.data.cache import ab_bin_index, load_cache, prepare, rebalance_weights
from chromalift.train.loop import TrainConfig, train
from chromalift.train.losses import ab_bin_targets, compute_loss, head_bin_lookup, head_bin_weights, used_ab_bins

BINS = ModelConfig(num_classes=2, width=0.125, global_size=32, ab_bins=8)
KEEP = (9, 10, 17, 18, 27, 36, 45, 54)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("bins")
    return prepare(make_photo_folder(root / "photos"), root / "train", size=40, progress=False, workers=1).root


def test_the_config_holds_the_kept_bins_and_refuses_bad_ones():
    config = replace(BINS, ab_keep=list(KEEP))          # as JSON gives it
    assert config.ab_keep == KEEP and config.ab_outputs == len(KEEP) and BINS.ab_outputs == 64
    assert ColorizationNet(config).colorization.layers[6].out_channels == len(KEEP)
    full = ab_bin_centres(BINS)
    assert torch.equal(ab_bin_centres(config), full[:, list(KEEP)])
    for bad in ((3,), (10, 9), (9, 9, 10), (-1, 3), (3, 64)):
        with pytest.raises(ValueError, match="ab_keep"):
            replace(BINS, ab_keep=bad)
    with pytest.raises(ValueError, match="ab_keep"):
        ModelConfig(ab_keep=KEEP)                        # regression has no bins to keep
    with pytest.raises(CheckpointError, match="wrong type"):
        config_from({**BINS.to_dict(), "ab_keep": ["9", "10"]}, "w.safetensors")
    assert config_from(json.loads(json.dumps(config.to_dict())), "w").ab_keep == KEEP


def test_used_bins_are_those_the_photos_colours_fall_in():
    red, grey = np.array([220, 30, 30], np.uint8), np.array([128, 128, 128], np.uint8)
    photos = np.stack([np.broadcast_to(red, (6, 6, 3)), np.broadcast_to(grey, (6, 6, 3))])
    lab = rgb_to_lab(torch.from_numpy(np.stack([red, grey])[:, :, None, None]).float() / 255.0)
    expected = sorted(set(ab_bin_targets(lab[:, 1:], 8).flatten().tolist()))
    assert used_ab_bins(photos, 8) == tuple(expected) and len(expected) == 2
    assert used_ab_bins(photos[:1], 8) == ()          # one colour: no head to cut, the whole grid stays


def test_a_colour_outside_the_kept_bins_learns_the_nearest_kept_one():
    lookup = head_bin_lookup(8, KEEP)
    assert [int(lookup[b]) for b in KEEP] == list(range(len(KEEP)))
    assert int(lookup[0]) == KEEP.index(9) and int(lookup[63]) == KEEP.index(54)   # grid corners: nearest kept cell
    assert head_bin_lookup(8, ()) is None
    model = ColorizationNet(replace(BINS, ab_keep=KEEP))
    ab = torch.full((2, 2, 16, 16), 100.0)            # far corner of the grid: no kept bin holds it
    _, loss, _, _ = compute_loss(model, torch.rand(2, 1, 32, 32), ab, torch.full((2,), -1), alpha=0,
                                 ab_weights=None, ab_bins=8, ab_lookup=lookup)
    assert torch.isfinite(loss)


@pytest.mark.slow
def test_cutting_trained_weights_keeps_their_colours_and_every_engine_reads_them(tmp_path):
    from chromalift.inference.numpy_engine import NumpyColorizer
    torch.manual_seed(0)
    full = ColorizationNet(BINS).eval()
    with torch.no_grad():   # trained weights put next to no probability on bins photos never show
        dropped = [b for b in range(64) if b not in KEEP]
        full.colorization.layers[6].bias[dropped] = -40.0
    cut = pruned(full, KEEP)
    assert cut.config.ab_keep == KEEP and pruned(full, tuple(range(64))).config.ab_keep == ()
    assert pruned(cut, KEEP[:4] + (63,)).config.ab_keep == KEEP[:4]   # cut weights keep only bins they still have
    l = torch.rand(1, 1, 32, 48) - 0.5
    with torch.no_grad():
        want = full.local_ab(l, full.global_prior(l[..., :32, :32])[0])
        got = cut.local_ab(l, cut.global_prior(l[..., :32, :32])[0])
    assert torch.allclose(got, want, atol=1e-5)
    save_weights(tmp_path / "cut.safetensors", cut, classes=["a", "b"])
    loaded = load_weights(tmp_path / "cut.safetensors")[0]
    assert loaded.config.ab_keep == KEEP
    lite = NumpyColorizer.load(tmp_path / "cut.safetensors").net
    prior, _ = lite.global_prior(l[0, 0, :32, :32].numpy())
    assert np.allclose(lite.local_ab(l[0, 0].numpy(), prior), want[0].permute(1, 2, 0).numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="ab bins"):
        pruned(ColorizationNet(replace(BINS, ab_bins=0)), KEEP)


def test_weights_cli_cuts_the_head_to_the_training_photos_bins(cache, tmp_path, capsys):
    from chromalift.cli.main import main
    for name, config in (("bins", BINS), ("mse", replace(BINS, ab_bins=0))):
        save_checkpoint(tmp_path / f"{name}.pt", {"model_config": config.to_dict(),
                        "model": ColorizationNet(config).state_dict(), "step": 3, "classes": ["a", "b"]})
    assert main(["weights", str(tmp_path / "bins.pt"), str(tmp_path / "w.safetensors"), "--ab-keep-from", str(cache)]) == 0
    used = used_ab_bins(load_cache(cache).images, 8)
    assert 2 <= len(used) < 64 and load_weights(tmp_path / "w.safetensors")[0].config.ab_keep == used
    capsys.readouterr()
    out = tmp_path / "m.safetensors"
    assert main(["weights", str(tmp_path / "mse.pt"), str(out), "--ab-keep-from", str(cache)]) == 1
    err = capsys.readouterr().err
    assert "ab bins" in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_training_with_ab_prune_predicts_the_used_bins_and_starts_from_full_grid_weights(cache, tmp_path):
    classes = load_cache(cache).classes
    torch.manual_seed(3)
    start = ColorizationNet(replace(BINS, num_classes=len(classes)))
    save_weights(tmp_path / "full.safetensors", start, classes=classes)
    cfg = TrainConfig(data=str(cache), out=str(tmp_path / "run"), width=0.125, crop=32, batch_size=8, steps=1,
                      eval_every=100, workers=0, threads=1, progress=False, optimizer="adam", lr=1e-9,
                      loss="classify", ab_bins=8, ab_prune=True, init=str(tmp_path / "full.safetensors"))
    train(cfg)
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    keep = tuple(state["model_config"]["ab_keep"])
    assert keep == used_ab_bins(load_cache(cache).images, 8) and len(keep) < 64
    head = state["model"]["colorization.layers.6.weight"]
    assert head.shape[0] == len(keep)
    assert torch.allclose(head, start.state_dict()["colorization.layers.6.weight"][list(keep)], atol=1e-6)


def _bin_probabilities(model: ColorizationNet, l: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        prior, _ = model.global_prior(l[..., :32, :32])
        x = model.colorization(model.fusion(model.mid(model.low(l)), prior))
    return torch.softmax(x.double(), dim=1)


def test_the_adjusted_head_divides_each_bins_probability_by_its_weight_to_the_power_beta():
    torch.manual_seed(0)
    model = ColorizationNet(replace(BINS, ab_keep=KEEP)).eval()
    weights = torch.rand(len(KEEP)) * 4 + 0.2
    l = torch.rand(1, 1, 32, 48) - 0.5
    p = _bin_probabilities(model, l)
    for beta in (0.0, 0.5, 1.0):
        got = _bin_probabilities(logit_adjusted(model, weights, beta), l)
        want = p / weights.double()[None, :, None, None] ** beta
        assert torch.allclose(got, want / want.sum(1, keepdim=True), atol=1e-6)
    assert torch.equal(logit_adjusted(model, weights, 0.0).state_dict()[HEAD + ".bias"],
                       model.state_dict()[HEAD + ".bias"])
    with pytest.raises(ValueError, match="regress"):
        logit_adjusted(ColorizationNet(replace(BINS, ab_bins=0)), weights, 1.0)
    with pytest.raises(ValueError, match="choose 0"):
        logit_adjusted(model, weights, 1.5)
    with pytest.raises(ValueError, match="bin weights"):
        logit_adjusted(model, weights[:3], 1.0)


def test_a_head_bins_weight_is_the_mean_loss_weight_of_the_pixels_that_target_it():
    red, grey = np.array([220, 30, 30], np.uint8), np.array([128, 128, 128], np.uint8)
    photos = np.stack([np.broadcast_to(red, (6, 6, 3)), np.broadcast_to(grey, (6, 6, 3))])
    ab = rgb_to_lab(torch.from_numpy(np.stack([red, grey])[:, :, None, None]).float() / 255.0)[:, 1:]
    hist = np.zeros((32, 32))
    hist.flat[ab_bin_index(ab).flatten().numpy()] = [1, 9]     # grey common, red rare
    pixel_weight = rebalance_weights(hist, 0.5)[ab_bin_index(ab).flatten()]
    assert pixel_weight[0] > 1 > pixel_weight[1]
    full = head_bin_weights(photos, hist, 0.5, 8)
    red_bin, grey_bin = ab_bin_targets(ab, 8).flatten().tolist()
    assert torch.allclose(full[[red_bin, grey_bin]], pixel_weight)
    others = [b for b in range(64) if b not in (red_bin, grey_bin)]
    assert torch.equal(full[others], torch.ones(len(others)))        # no pixel: left alone
    keep = (red_bin, grey_bin) if red_bin < grey_bin else (grey_bin, red_bin)
    cut = head_bin_weights(photos, hist, 0.5, 8, keep + (63,))        # a cut head: by its outputs
    lookup = head_bin_lookup(8, keep + (63,))
    assert torch.allclose(cut[[int(lookup[red_bin]), int(lookup[grey_bin])]], pixel_weight) and cut[2] == 1


def _checkpoints(cache, tmp_path) -> ColorizationNet:
    """plain.pt and rebalanced.pt (--rebalance 0.5) in tmp_path: the same weights, trained on `cache`."""
    classes = load_cache(cache).classes
    torch.manual_seed(1)
    model = ColorizationNet(replace(BINS, num_classes=len(classes)))
    for name, rebalance in (("rebalanced", 0.5), ("plain", 0.0)):
        save_checkpoint(tmp_path / f"{name}.pt", {"model_config": model.config.to_dict(), "model": model.state_dict(),
                        "step": 3, "classes": classes, "args": {"rebalance": rebalance, "data": str(cache)}})
    return model


def test_weights_cli_takes_back_the_rebalancing_the_checkpoint_records(cache, tmp_path, capsys):
    from chromalift.cli.main import main
    model = _checkpoints(cache, tmp_path)
    out = tmp_path / "adjusted.safetensors"
    assert main(["weights", str(tmp_path / "rebalanced.pt"), str(out), "--ab-logit-adjust", "1"]) == 0
    adjusted, _, info = load_weights(out)
    assert info["ab_logit_adjust"] == 1.0 and info["train_args"]["rebalance"] == 0.5
    cached = load_cache(cache)
    weights = head_bin_weights(cached.images, cached.ab_hist, 0.5, 8)
    shift = model.state_dict()[HEAD + ".bias"] - adjusted.state_dict()[HEAD + ".bias"]
    assert torch.allclose(shift, weights.log(), atol=1e-5) and (weights != 1).any()
    capsys.readouterr()
    for source, extra, said in ((out, [], "already"), (tmp_path / "plain.pt", [], "not trained so"),
                                (tmp_path / "rebalanced.pt", ["--rebalance-data", str(tmp_path / "gone")], "gone"),
                                (tmp_path / "rebalanced.pt", ["--ab-logit-adjust", "2"], "choose 0")):
        target = tmp_path / "again.safetensors"
        assert main(["weights", str(source), str(target), "--ab-logit-adjust", "0.5", *extra]) == 1
        err = capsys.readouterr().err
        assert said in err and len(err.strip().splitlines()) == 1 and not target.exists()


def test_the_rebalanced_head_multiplies_each_bins_probability_by_its_weight():
    torch.manual_seed(0)
    model = ColorizationNet(replace(BINS, ab_keep=KEEP)).eval()
    weights = torch.rand(len(KEEP)) * 4 + 0.2
    l = torch.rand(1, 1, 32, 48) - 0.5
    want = _bin_probabilities(model, l) * weights.double()[None, :, None, None]
    got = _bin_probabilities(rebalanced(model, weights), l)
    assert torch.allclose(got, want / want.sum(1, keepdim=True), atol=1e-6)
    rare = int(weights.argmax())       # the most up-weighted bin gains probability everywhere
    assert (got[:, rare] > _bin_probabilities(model, l)[:, rare]).all()
    with pytest.raises(ValueError, match="regress"):
        rebalanced(ColorizationNet(replace(BINS, ab_bins=0)), weights)
    with pytest.raises(ValueError, match="bin weights"):
        rebalanced(model, weights[:3])


def test_weights_cli_rebalances_plain_weights_from_their_training_photos(cache, tmp_path):
    from chromalift.cli.main import main
    model = _checkpoints(cache, tmp_path)
    out = tmp_path / "bold.safetensors"
    assert main(["weights", str(tmp_path / "plain.pt"), str(out), "--ab-rebalance", "0.25"]) == 0
    bold, _, info = load_weights(out)
    assert info["ab_rebalance"] == 0.25 and "ab_logit_adjust" not in info
    cached = load_cache(cache)
    weights = head_bin_weights(cached.images, cached.ab_hist, 0.25, 8)
    shift = bold.state_dict()[HEAD + ".bias"] - model.state_dict()[HEAD + ".bias"]
    assert torch.allclose(shift, weights.log(), atol=1e-5) and (weights != 1).any()


def test_weights_cli_refuses_what_it_cannot_rebalance_in_one_line(cache, tmp_path, capsys):
    from chromalift.cli.main import main
    _checkpoints(cache, tmp_path)
    done = tmp_path / "done.safetensors"
    assert main(["weights", str(tmp_path / "plain.pt"), str(done), "--ab-rebalance", "0.1"]) == 0
    capsys.readouterr()
    for source, extra, said in ((done, ["--ab-rebalance", "0.1"], "adjusted already"),
                                (tmp_path / "rebalanced.pt", ["--ab-rebalance", "0.1"], "--ab-logit-adjust"),
                                (tmp_path / "plain.pt", ["--ab-rebalance", "0"], "choose a strength"),
                                (tmp_path / "plain.pt", ["--ab-rebalance", "1.5"], "choose a strength"),
                                (tmp_path / "plain.pt", ["--ab-rebalance", "0.1", "--ab-logit-adjust", "1"],
                                 "choose one"),
                                (tmp_path / "plain.pt", ["--ab-rebalance", "0.1", "--rebalance-data",
                                                         str(tmp_path / "gone")], "gone")):
        target = tmp_path / "again.safetensors"
        assert main(["weights", str(source), str(target), *extra]) == 1
        err = capsys.readouterr().err
        assert said in err and len(err.strip().splitlines()) == 1 and not target.exists()
