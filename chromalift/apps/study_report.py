"""`colorize study --report`: the paper's table from a study's votes, with 95% Wilson intervals, and a chart.

Iizuka et al. (2016), Table 1: the share of images judged "natural", per source. Wilson's score interval
is used rather than the normal approximation: it stays inside [0, 1] and is honest for the small counts
and the rates near 100% that such studies have.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from chromalift.apps.study import REAL, Study, read_votes
from chromalift.io.atomic import atomic_write

Z95 = 1.959963984540054   # the standard normal's 97.5th percentile


@dataclass(frozen=True)
class Row:
    source: str
    votes: int
    natural: int
    low: float     # 95% Wilson interval of the natural rate
    high: float

    @property
    def rate(self) -> float:
        return self.natural / self.votes if self.votes else float("nan")


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n; (0, 1) when there are no votes."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def tally(study: Study) -> tuple[list[Row], int]:
    """One row per source (real first, then the study's order) and the number of participants."""
    rows = read_votes(study.votes_path)
    order = [REAL] + [s for s in study.sources if s != REAL]
    order += sorted({r["source"] for r in rows} - set(order))
    table = []
    for source in order:
        votes = [r for r in rows if r["source"] == source]
        natural = sum(r["vote"] == "natural" for r in votes)
        table.append(Row(source, len(votes), natural, *wilson(natural, len(votes))))
    return table, len({r["participant"] for r in rows})


def markdown(rows: list[Row], participants: int) -> str:
    lines = ["| source | natural | 95% interval (Wilson) | votes |", "|---|---:|---|---:|"]
    for r in rows:
        rate = f"{100 * r.rate:.1f}%" if r.votes else "-"
        lines.append(f"| {r.source} | {rate} | {100 * r.low:.1f}% - {100 * r.high:.1f}% | {r.votes} |")
    lines.append(f"\n{sum(r.votes for r in rows)} votes from {participants} participant"
                 f"{'s' if participants != 1 else ''}.")
    return "\n".join(lines)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):   # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def chart(rows: list[Row], path: str | Path, *, title: str = 'Judged "natural" (95% Wilson intervals)') -> None:
    """A bar chart of the natural rate per source with its interval, written atomically as PNG."""
    bar, gap, left, top, height = 90, 40, 60, 66, 300
    width = left + len(rows) * (bar + gap) + gap
    img = Image.new("RGB", (max(width, 420), top + height + 70), "white")
    d = ImageDraw.Draw(img)
    font, small = _font(15), _font(12)
    d.text((left, 14), title, fill="black", font=font)
    y = lambda rate: top + height * (1 - rate)
    for tick in range(0, 101, 20):
        d.line([(left - 5, y(tick / 100)), (img.width - gap // 2, y(tick / 100))], fill="#dddddd")
        d.text((left - 10, y(tick / 100)), f"{tick}%", fill="#555555", font=small, anchor="rm")
    for i, r in enumerate(rows):
        x0 = left + gap + i * (bar + gap)
        mid = x0 + bar / 2
        if r.votes:
            d.rectangle([x0, y(r.rate), x0 + bar, y(0)], fill="#7f8c8d" if r.source == "real" else "#0a66c2")
            d.line([(mid, y(r.high)), (mid, y(r.low))], fill="black", width=2)
            for edge in (r.low, r.high):
                d.line([(mid - 10, y(edge)), (mid + 10, y(edge))], fill="black", width=2)
            d.text((mid, y(r.high) - 4), f"{100 * r.rate:.1f}%", fill="black", font=small, anchor="md")
        d.text((mid, y(0) + 8), r.source[:16], fill="black", font=small, anchor="ma")
        d.text((mid, y(0) + 26), f"n = {r.votes}", fill="#555555", font=small, anchor="ma")
    atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))
