"""Throughput without a change of output: banded full-size work, 8-bit input through a table, and the
overlapped read -> colorize -> write pipeline."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import gradient_rgb
from PIL import Image

from chromalift import Colorizer
from chromalift.batch.pipeline import overlapped
from chromalift.cli.main import main
from chromalift.color.lab import l_from_rgb
from chromalift.inference import colorizer as inference


@pytest.mark.parametrize("small, size", [((171, 256), (2000, 3000)), ((40, 30), (41, 29)), ((5, 7), (100, 3)),
                                         ((32, 32), (32, 32))])
def test_rows_upsampled_alone_are_the_whole_upsample(small, size):
    torch.manual_seed(0)
    ab = torch.randn(1, 2, *small) * 30
    whole = F.interpolate(ab, size=size, mode="bilinear", align_corners=False)
    bands = torch.cat([inference.upsample_rows(ab, size, r, min(size[0], r + 37)) for r in range(0, size[0], 37)], 2)
    assert (whole - bands).abs().max() < 1e-3   # Lab units: a thousandth of a level


def test_banded_finish_matches_one_band_and_keeps_l(monkeypatch):
    torch.manual_seed(1)
    l = torch.rand(1, 1, 301, 203) * 100
    ab = torch.randn(1, 2, 151, 102) * 40       # saturated: many out-of-gamut pixels to fit
    whole, whole16 = inference.finish(l, ab), inference.finish(l.double(), ab.double(), bits=16)
    monkeypatch.setattr(inference, "BAND_PIXELS", 203 * 7)
    bands, bands16 = inference.finish(l, ab), inference.finish(l.double(), ab.double(), bits=16)
    assert bands.shape == (301, 203, 3) and bands.dtype == np.uint8
    diff = np.abs(bands.astype(int) - whole)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    l_out = l_from_rgb(torch.from_numpy(bands).permute(2, 0, 1)[None].float() / 255)
    assert (l_out - l).abs().max() < 0.6, "luminance kept to 8-bit rounding"
    assert bands16.dtype == np.uint16 and np.abs(bands16.astype(int) - whole16).max() <= 1


def test_8_bit_input_through_the_table_gives_the_float_paths_output(tiny_weights):
    c = Colorizer.load(tiny_weights, device="cpu")
    u8 = gradient_rgb(90, 120, seed=4)
    a, b = c.colorize(u8), c.colorize(u8.astype(np.float32) / 255)
    assert a.shape == (90, 120, 3) and np.abs(a.astype(int) - b).max() <= 1


def test_the_pipeline_keeps_order_reports_failures_and_bounds_what_waits():
    state = {"read": 0, "written": 0, "most_waiting": 0}
    lock = threading.Lock()

    def read(job):
        if job == 3:
            raise ValueError("3: unreadable")
        with lock:
            state["read"] += 1
            state["most_waiting"] = max(state["most_waiting"], state["read"] - state["written"])
        time.sleep(0.01)
        return job * 10

    def work(job, data):
        if job == 5:
            raise MemoryError
        return data + 1

    def write(job, data, result):
        time.sleep(0.02 if job % 2 else 0.0)    # writes finish out of order
        with lock:
            state["written"] += 1
        return result

    seen = []
    overlapped(range(8), read, work, write, lambda job, out, err: seen.append((job, out, type(err).__name__)), ahead=1)
    assert [j for j, _, _ in seen] == list(range(8)), "outcomes in the jobs' order"
    assert seen[3] == (3, None, "ValueError") and seen[5] == (5, None, "MemoryError")
    assert [out for j, out, _ in seen if j not in (3, 5)] == [1, 11, 21, 41, 61, 71]
    assert state["most_waiting"] <= 4, "one read ahead, one write behind, one at work (and one reporting)"


def test_ctrl_c_in_the_pipeline_finishes_the_writes_in_flight_and_stops_reading():
    started, reported = [], []

    def read(job):
        started.append(job)
        return job

    def work(job, data):
        if job == 2:
            raise KeyboardInterrupt
        return data

    def write(job, data, result):
        time.sleep(0.05)
        return result

    with pytest.raises(KeyboardInterrupt):
        overlapped(range(100), read, work, write, lambda job, out, err: reported.append((job, out)), ahead=1)
    assert reported == [(0, 0), (1, 1)], "the writes in flight were finished and reported"
    assert max(started) <= 4, "no reading far beyond the interruption"


def test_a_folder_gives_what_each_photo_gives_alone(tmp_path, tiny_weights):
    folder = tmp_path / "in"
    folder.mkdir()
    for i, (h, w) in enumerate([(120, 90), (64, 200), (75, 75), (300, 40)]):
        Image.fromarray(gradient_rgb(h, w, seed=i)).convert("L").save(folder / f"{i}.jpg", quality=90)
    assert main([str(folder), "-o", str(tmp_path / "out"), "--model", str(tiny_weights)]) == 0
    for i in range(4):
        assert main([str(folder / f"{i}.jpg"), "-o", str(tmp_path / f"alone{i}.png"), "--model", str(tiny_weights)]) == 0
        together = np.asarray(Image.open(tmp_path / "out" / f"{i}.jpg").convert("RGB"))
        alone_jpg = tmp_path / f"alone{i}.jpg"
        Image.open(tmp_path / f"alone{i}.png").save(alone_jpg, quality=95)
        assert np.array_equal(np.asarray(Image.open(alone_jpg).convert("RGB")), together)
