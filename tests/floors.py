"""Print the core dependencies pinned to their floors (`pkg==x.y`), for the minimum-versions check.

    python tests/floors.py   # -> numpy==2.0 pillow==10.1 ...   (torch is pinned by the caller)
"""
import re
from pathlib import Path

import tomllib

project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
pins = []
for requirement in project["dependencies"]:
    m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9.]*)\s*", requirement)
    if not m:
        raise SystemExit(f"pyproject.toml: {requirement!r} has no plain >= floor to test")
    if m[1].lower() != "torch":
        pins.append(f"{m[1]}=={m[2]}")
print(" ".join(pins))
