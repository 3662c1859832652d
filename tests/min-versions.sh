#!/bin/sh
# The floors in pyproject.toml, tested: a second venv with every core dependency at its lowest allowed
# version (torch at its floor, the CPU build), then the tests that need nothing beyond the core.
set -e
cd "$(dirname "$0")/.."
python3 -m venv .venv-min
.venv-min/bin/pip install -q torch==2.13.0
.venv-min/bin/pip install -q $(python3 tests/floors.py) "pytest>=8" "hypothesis>=6.100"
.venv-min/bin/pip install -q --no-deps -e .
.venv-min/bin/python -m pip list 2>/dev/null | grep -i -E "^(numpy|pillow|safetensors|tqdm|av|torch) "
.venv-min/bin/python -m pytest -q -p no:cacheprovider tests/test_images.py tests/test_cli.py tests/test_model.py \
    tests/test_checkpoint.py tests/test_throughput.py tests/test_scaleout.py tests/test_video.py tests/test_archive.py
