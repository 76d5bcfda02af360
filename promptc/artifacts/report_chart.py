"""The optimization trajectory as an inline SVG: one point per trial, score against what
the compile had spent when the trial was logged.

Full dev evaluations are filled circles, subset (minibatch) scores hollow ones, unscored
trials small marks on the axis; a solid step line is the best dev score so far and a
dashed one the best subset score so far (subset scores are on other rows: not comparable
with dev scores). Each point links to its row in the trial table. Pure Python, no script.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 760, 280
LEFT, RIGHT, TOP, BOTTOM = 46, 16, 16, 38
Scale = Callable[[float], float]  # data value -> SVG coordinate


@dataclass
class Point:
    """One trial on the chart."""

    index: int
    x: float  # cumulative calls or cost when it was logged
    score: float | None
    full_eval: bool
    title: str  # the tooltip: kind, score, footing, what was tried
    chosen: bool = False


def trajectory_svg(points: Sequence[Point], *, x_label: str, stopped: str | None = None,
                   money: bool = False) -> str:
    """The chart; `money` formats the x axis as USD."""
    scores = [p.score for p in points if p.score is not None]
    lo, hi = _y_range(scores)
    x_max = max((p.x for p in points), default=0.0) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + plot_w * x / x_max

    def sy(y: float) -> float:
        return TOP + plot_h * (1 - (y - lo) / ((hi - lo) or 1.0))

    out = [f'<svg class="trajectory" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
           f'aria-label="score of each of {len(points)} trials against {escape(x_label)}">']
    out += _axes(lo, hi, x_max, sx, sy, x_label, money)
    for cls, full in (("best dev", True), ("best subset", False)):
        line = _best_line([p for p in points if p.score is not None and p.full_eval == full], sx, sy, x_max)
        if line:
            out.append(f'<polyline class="{cls}" points="{line}"/>')
    if stopped is not None and points:
        x = sx(max(p.x for p in points))
        out.append(f'<line class="stop" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + plot_h}">'
                   f"<title>{escape('budget stop: ' + stopped)}</title></line>"
                   f'<text class="stop" x="{x - 4:.1f}" y="{TOP + 10}" text-anchor="end">budget stop</text>')
    for p in points:
        out.append(_point(p, sx(p.x), sy(p.score) if p.score is not None else TOP + plot_h))
    out.append("</svg>")
    return "".join(out)


def _y_range(scores: Sequence[float]) -> tuple[float, float]:
    if not scores or (min(scores) >= 0 and max(scores) <= 1):
        return 0.0, 1.0
    lo, hi = min(scores), max(scores)
    return (lo - 0.5, hi + 0.5) if lo == hi else (lo, hi)


def _axes(lo: float, hi: float, x_max: float, sx: Scale, sy: Scale, x_label: str, money: bool) -> list[str]:
    base, out = sy(lo), []
    for i in range(5):
        y = lo + (hi - lo) * i / 4
        out.append(f'<line class="grid" x1="{LEFT}" y1="{sy(y):.1f}" x2="{WIDTH - RIGHT}" y2="{sy(y):.1f}"/>'
                   f'<text x="{LEFT - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:.2f}</text>')
    for x in _ticks(x_max):
        label = f"${x:.4g}" if money else f"{x:,.0f}"
        out.append(f'<text x="{sx(x):.1f}" y="{base + 16:.1f}" text-anchor="middle">{escape(label)}</text>')
    out.append(f'<line class="axis" x1="{LEFT}" y1="{base:.1f}" x2="{WIDTH - RIGHT}" y2="{base:.1f}"/>')
    out.append(f'<text x="{LEFT + (WIDTH - LEFT - RIGHT) / 2:.1f}" y="{HEIGHT - 4}" text-anchor="middle">'
               f"{escape(x_label)}</text>")
    return out


def _ticks(x_max: float) -> list[float]:
    """About five round tick values from 0 to `x_max`."""
    raw = x_max / 5
    step = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for mult in (1, 2, 5, 10):
        if raw <= step * mult:
            step *= mult
            break
    return [i * step for i in range(int(x_max / step + 1e-9) + 1)]


def _best_line(points: Sequence[Point], sx: Scale, sy: Scale, x_max: float) -> str:
    """A step line through the best score so far, held to the right edge."""
    best: float | None = None
    coords: list[str] = []
    for p in sorted(points, key=lambda p: (p.x, p.index)):
        assert p.score is not None
        if best is not None and p.score > best:
            coords.append(f"{sx(p.x):.1f},{sy(best):.1f}")
        if best is None or p.score > best:
            best = p.score
            coords.append(f"{sx(p.x):.1f},{sy(best):.1f}")
    if best is not None:
        coords.append(f"{sx(x_max):.1f},{sy(best):.1f}")
    return " ".join(coords)


def _point(p: Point, x: float, y: float) -> str:
    kind = "unscored" if p.score is None else "full" if p.full_eval else "subset"
    radius = {"full": 4.5, "subset": 3.5, "unscored": 3.0}[kind]
    ring = f'<circle class="chosen" cx="{x:.1f}" cy="{y:.1f}" r="8"/>' if p.chosen else ""
    return (f'<a href="#trial-{p.index}">{ring}<circle class="pt {kind}" data-trial="{p.index}" '
            f'cx="{x:.1f}" cy="{y:.1f}" r="{radius}"><title>{escape(p.title)}</title></circle></a>')
