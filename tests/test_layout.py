"""The house: subpackages on floors (each imports only from the floors below it), no import circles between
modules, one dispatch table, and the library API the CLI stands on."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

PACKAGE = Path(__file__).resolve().parents[1] / "chromalift"
FLOORS = {"color": 0, "progress": 0, "io": 1, "model": 2, "inference": 3, "evaluation": 4, "film": 5, "batch": 6,
          "train": 6, "apps": 7, "cli": 8, "__main__": 9, "__init__": 9}


def _imports() -> dict[str, set[str]]:
    """module -> the chromalift modules it imports, at the top or inside a function."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chromalift"):
                targets.add(node.module)
                targets.update(f"{node.module}.{a.name}" for a in node.names)   # `from pkg import module`
        graph[name] = targets
    return {m: {t for t in ts if t in graph and t != m} for m, ts in graph.items()}


def _floor(module: str) -> int:
    return FLOORS[module.split(".")[1]]


def test_every_subpackage_says_what_it_is_for():
    for init in PACKAGE.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and doc.strip(), f"{init} has no docstring"


def test_imports_only_run_down_the_floors():
    up = [(m, t) for m, ts in _imports().items() for t in ts
          if m.split(".")[1] != t.split(".")[1] and _floor(t) >= _floor(m)]
    assert not up, f"imports that run up or sideways a floor: {up}"


def test_no_import_circles():
    graph, state, circles = _imports(), {}, []

    def visit(m, path):
        state[m] = "open"
        for t in sorted(graph[m]):
            if state.get(t) == "open":
                circles.append(path[path.index(t):] + [t] if t in path else [m, t])
            elif t not in state:
                visit(t, path + [t])
        state[m] = "done"
    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not circles, circles


def test_modules_stay_small():
    big = {p.name: n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 360}
    assert not big, big


def test_the_dispatch_table_holds_every_subcommand():
    from chromalift.cli.common import SUBCOMMANDS
    from chromalift.cli.main import COMMANDS
    assert set(COMMANDS) == set(SUBCOMMANDS) and all(callable(f) for f in COMMANDS.values())


def test_train_flags_come_from_the_config_alone():
    from dataclasses import fields

    from chromalift.cli.train import _train_parser
    from chromalift.train.config import TrainConfig
    from chromalift.train.gpu_window import WINDOW_SETTINGS, parser
    flags = {a.dest for a in _train_parser()._actions} - {"help"}
    assert flags == {f.name for f in fields(TrainConfig)}
    window = parser()
    helps = {a.dest: a.help for a in window._actions}
    assert set(WINDOW_SETTINGS) <= set(helps)
    assert helps["ab_soft"] == next(f for f in fields(TrainConfig) if f.name == "ab_soft").metadata["help"]


def test_colorize_files_does_what_the_command_does(tmp_path, tiny_weights):
    from chromalift import Options, colorize_files, load_colorizer
    from chromalift.cli.main import main
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40 + i, 50, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not a photo")
    colorizer = load_colorizer(tiny_weights, device="cpu")
    tally = colorize_files([str(folder)], str(tmp_path / "lib"), colorizer=colorizer, options=Options(classify=True),
                           report=str(tmp_path / "lib.json"), progress=False)
    assert (tally.done, tally.count, len(tally.failures)) == (3, 4, 1) and "broken.png" in tally.failures[0]
    assert main([str(folder), "-o", str(tmp_path / "cli"), "--model", str(tiny_weights)]) == 1
    for i in range(3):
        assert (tmp_path / "lib" / f"{i}.png").read_bytes() == (tmp_path / "cli" / f"{i}.png").read_bytes()
    records = json.loads((tmp_path / "lib.json").read_text())
    assert len(records) == 4 and all(len(r["classes"]) == 3 for r in records if not r["error"])


def test_load_colorizer_owns_the_engine_choice(tiny_weights):
    from chromalift import Colorizer, LoadError, NumpyColorizer, load_colorizer
    assert isinstance(load_colorizer(one_photo=True), NumpyColorizer)                 # shipped model, one photo
    assert isinstance(load_colorizer(one_photo=True, hints=True), Colorizer)
    assert isinstance(load_colorizer(one_photo=True, process_size=4096), Colorizer)
    assert isinstance(load_colorizer(tiny_weights, one_photo=True), Colorizer)        # a user's weights: torch
    assert isinstance(load_colorizer(tiny_weights, backend="numpy"), NumpyColorizer)
    for kwargs in ({"backend": "numpy", "films": True}, {"backend": "numpy", "device": "cuda"}, {"backend": "tpu"}):
        try:
            load_colorizer(**kwargs)
        except LoadError as e:
            assert "\n" not in str(e)
        else:
            raise AssertionError(kwargs)


def test_the_same_photo_gives_the_same_bytes_on_every_run(tmp_path):
    photo = tmp_path / "p.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (30, 40), dtype=np.uint8)).save(photo)
    outs = []
    for i in range(2):
        out = tmp_path / f"o{i}.png"
        subprocess.run([sys.executable, "-m", "chromalift", str(photo), "-o", str(out)], check=True, capture_output=True)
        outs.append(out.read_bytes())       # the sRGB profile's creation date no longer changes with the clock
    assert outs[0] == outs[1]
    import datetime
    import io

    from PIL import ImageCms

    from chromalift.io.photos import srgb_icc
    assert ImageCms.ImageCmsProfile(io.BytesIO(srgb_icc())).profile.creation_date == datetime.datetime(2022, 1, 1)
