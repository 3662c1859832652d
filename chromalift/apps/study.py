"""`colorize study`: the paper's user study ("natural or not?") on your own photos and models.

Iizuka et al. showed people one image at a time and asked whether it looked natural: 92.6% of their
colorizations were, against 97.2% of real photos. A study folder holds everything such a study needs:

    study.json     the manifest: seed, sources, and every image (opaque id, photo, source), shuffled
    images/ID.jpg  each photo's real colour version and each source's colorization of its greyscale, all
                   at one size and one JPEG quality, named by an id that says nothing of their source
    votes.csv      written by `colorize study --serve` (study_web.py), one fsync'ed line per vote

Sources: 'real' (the photo itself), 'grey' (its luminance, the grey baseline), 'shipped' (the model that
ships with the package) or the path of any weights file (named by its file name).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import secrets
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from chromalift.color.lab import grey_baseline, rgb_to_lab
from chromalift.io.atomic import make_dir
from chromalift.io.photos import ImageError, find_images, read_photo

REAL, GREY, SHIPPED = "real", "grey", "shipped"
VOTE_FIELDS = ["time", "participant", "image", "photo", "source", "vote", "response_ms"]
VOTES = ("natural", "not_natural")


class StudyError(Exception):
    """A study that cannot be prepared, read or voted in; str() is one line naming the cause."""


@dataclass(frozen=True)
class Item:
    id: str        # opaque: the file name under images/, and all a participant's browser ever sees
    photo: str     # the photo it shows, as named in the manifest
    source: str    # real, grey, or a model's name


@dataclass(frozen=True)
class Study:
    folder: Path
    seed: int
    sources: list[str]
    photos: list[str]
    items: list[Item]

    @property
    def votes_path(self) -> Path:
        return self.folder / "votes.csv"

    def image_path(self, item_id: str) -> Path:
        return self.folder / "images" / f"{item_id}.jpg"

    def by_id(self) -> dict[str, Item]:
        return {item.id: item for item in self.items}


def source_names(models: list[str]) -> list[tuple[str, str]]:
    """(name, spec) per --model: 'grey' and 'shipped' as they are, a weights file by its file name (made
    unique); 'real' always comes first."""
    named, used = [(REAL, REAL)], {REAL}
    for spec in models:
        base = spec if spec in (GREY, SHIPPED) else Path(spec).name
        name, n = base, 2
        while name in used:
            name, n = f"{base}-{n}", n + 1
        used.add(name)
        named.append((name, spec))
    return named


def photo_list(inputs: list[str], limit: int | None = None) -> list[Path]:
    """The photos named and those under the folders named, in order; at most `limit`, evenly spaced."""
    photos: list[Path] = []
    for entry in map(Path, inputs):
        if entry.is_dir():
            photos += find_images(entry)
        elif entry.exists():
            photos.append(entry)
        else:
            raise StudyError(f"{entry}: no such file or folder")
    photos = list(dict.fromkeys(photos))
    if limit and len(photos) > limit:
        photos = [photos[round(i * (len(photos) - 1) / max(limit - 1, 1))] for i in range(limit)]
    if not photos:
        raise StudyError(f"no photos in {', '.join(inputs)}")
    return photos


def _jpeg(rgb_u8: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()   # 4:4:4: chroma subsampling would blur the colours under judgement
    Image.fromarray(rgb_u8, "RGB").save(buf, format="JPEG", quality=quality, subsampling=0, optimize=True)
    return buf.getvalue()


def _versions(rgb_u8: np.ndarray, colorizers: dict, process_size: int | None) -> dict[str, np.ndarray]:
    """Every source's version of one photo (already at the study's size), as uint8 RGB."""
    lab = rgb_to_lab(torch.from_numpy(rgb_u8).permute(2, 0, 1).float() / 255)
    grey = grey_baseline(lab[:1]).numpy()
    out = {REAL: rgb_u8, GREY: grey}
    for name, colorizer in colorizers.items():   # each model sees only the greyscale, as a user's photo
        out[name] = colorizer.colorize(grey.astype(np.float32) / 255, process_size=process_size)
    return out


def _resized(path: Path, size: int) -> np.ndarray:
    photo = read_photo(path)
    img = Image.fromarray(photo.u8, "RGB")
    if max(img.size) > size:
        scale = size / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.LANCZOS)
    return np.array(img)   # writable: torch.from_numpy takes it as it is


def prepare_study(photos: list[Path], out: str | Path, sources: list[tuple[str, object]], *, seed: int = 0,
                  size: int = 512, quality: int = 90, process_size: int | None = 256,
                  on_skip=None) -> Study:
    """Write a study folder: every photo's versions (one per source; a source is (name, Colorizer), or
    (REAL/GREY, None)) at one size and quality, shuffled with `seed`. The folder is built beside `out`
    and renamed into place, so a failed preparation leaves nothing; an existing study is never replaced."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StudyError(f"{out}: already exists (a study is never replaced: choose a new folder)")
    colorizers = {name: c for name, c in sources if name not in (REAL, GREY)}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_dir(f".{out.name}.partial-", out.parent)
    try:
        (tmp / "images").mkdir()
        rng = random.Random(seed)
        items, names, used = [], [], set()
        for path in photos:
            try:
                versions = _versions(_resized(path, size), colorizers, process_size)
            except ImageError as e:
                if on_skip:
                    on_skip(str(e))
                continue
            names.append(_unique(path, names))
            for name, _ in sources:
                item_id = _item_id(rng, used)
                (tmp / "images" / f"{item_id}.jpg").write_bytes(_jpeg(versions[name], quality))
                items.append(Item(item_id, names[-1], name))
        if not items:
            raise StudyError("no photo could be read; nothing to study")
        rng.shuffle(items)
        manifest = {"seed": seed, "size": size, "quality": quality, "sources": [n for n, _ in sources],
                    "photos": names, "items": [vars(i) for i in items]}
        (tmp / "study.json").write_text(json.dumps(manifest, indent=1) + "\n")
        if out.exists():
            out.rmdir()   # an empty folder only (checked above)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return load_study(out)


def _item_id(rng: random.Random, used: set[str]) -> str:
    """An opaque image id: random from the operating system, so that no seed tells which source it is."""
    while (item_id := secrets.token_hex(6)) in used:
        pass
    used.add(item_id)
    return item_id


def _unique(path: Path, taken: list[str]) -> str:
    """A photo's name in the manifest: its file name, or (when two share it) with a short hash of its path."""
    name = path.name
    if name in taken:
        name = f"{path.stem}-{hashlib.sha256(str(path).encode()).hexdigest()[:6]}{path.suffix}"
    return name


def load_study(folder: str | Path) -> Study:
    folder = Path(folder)
    try:
        m = json.loads((folder / "study.json").read_text())
        items = [Item(str(i["id"]), str(i["photo"]), str(i["source"])) for i in m["items"]]
        study = Study(folder, int(m["seed"]), list(m["sources"]), list(m["photos"]), items)
    except FileNotFoundError:
        raise StudyError(f"{folder}: not a study (no study.json; make one with colorize study PHOTOS --out)") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StudyError(f"{folder / 'study.json'}: unreadable ({e})") from None
    missing = [i.id for i in items if not study.image_path(i.id).is_file()]
    if missing:
        raise StudyError(f"{study.image_path(missing[0])}: missing ({len(missing)} images of the study are)")
    return study


class VoteLog:
    """votes.csv: one line per vote, appended and fsync'ed before the vote is acknowledged, so a crash
    (or a kill) loses at most the vote being written. A line torn by a crash is dropped on opening."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        if not path.exists() or path.stat().st_size == 0:
            self._append(",".join(VOTE_FIELDS) + "\r\n")
        else:
            _drop_torn_line(path)

    def rows(self) -> list[dict]:
        return read_votes(self.path)

    def append(self, row: dict) -> None:
        buf = io.StringIO()
        csv.DictWriter(buf, VOTE_FIELDS).writerow({k: _inert(v) for k, v in row.items()})
        self._append(buf.getvalue())

    def _append(self, line: str) -> None:
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)


def _inert(value):
    """A cell a spreadsheet will not run: text starting with = + - @ or a tab/CR gets a leading apostrophe
    (OWASP's advice against CSV injection; a photo named '=HYPERLINK(...).jpg' stays a name)."""
    return "'" + value if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _drop_torn_line(path: Path) -> None:
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)
            os.fsync(f.fileno())


def read_votes(path: str | Path) -> list[dict]:
    """The complete vote lines of a votes.csv (a torn last line is left out)."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise StudyError(f"{path}: unreadable ({e})") from None
    if text and not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    if rows and set(VOTE_FIELDS) - set(rows[0]):
        raise StudyError(f"{path}: not a votes file (its header lacks {', '.join(sorted(set(VOTE_FIELDS) - set(rows[0])))})")
    bad = [r for r in rows if r.get("vote") not in VOTES or not r.get("source")]
    if bad:
        raise StudyError(f"{path}: line {rows.index(bad[0]) + 2} is not a vote ({bad[0]})")
    return rows
