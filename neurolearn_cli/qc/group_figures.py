"""Strip plots of one IQM across images, laid out for inline SVG in the group report.

Each image is a point (its name and value on hover, a link to its
participant's report), over a box from the quartiles with whiskers to the
most extreme values inside Tukey's fences, as MRIQC's group report shows
them. Only coordinates are computed here; the template draws them, so every
string from the data passes through jinja2's autoescaping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.ticker import MaxNLocator

WIDTH, HEIGHT = 380.0, 120.0
LEFT, RIGHT = 16.0, 364.0
CENTRE_Y, JITTER_Y, AXIS_Y = 48.0, 20.0, 88.0
_GOLDEN = 0.6180339887498949


@dataclass(frozen=True)
class StripPoint:
    """One image: position, hover text, whether it is flagged, and its label and link."""

    x: float
    y: float
    title: str
    label: str
    flagged: bool
    href: str | None


@dataclass(frozen=True)
class StripPlot:
    """The drawable parts of one IQM's strip plot (SVG user units, origin at the top left)."""

    points: list[StripPoint]
    ticks: list[tuple[float, str]]
    box: tuple[float, float, float]
    whiskers: tuple[float, float]
    width: float = WIDTH
    height: float = HEIGHT
    left: float = LEFT
    right: float = RIGHT
    centre_y: float = CENTRE_Y
    half_box: float = JITTER_Y + 4.0
    axis_y: float = AXIS_Y


def _domain(values: np.ndarray) -> tuple[float, float]:
    """The x range shown: the data padded by 5 % (by 1 or 10 % of the value when all are equal)."""
    low, high = float(values.min()), float(values.max())
    pad = 0.05 * (high - low) if high > low else max(abs(low) * 0.1, 1.0)
    return low - pad, high + pad


def strip_plot(
    values: Sequence[float],
    titles: Sequence[str],
    labels: Sequence[str],
    flagged: Sequence[bool],
    hrefs: Sequence[str | None],
    fences: tuple[float, float],
) -> StripPlot:
    """Lay out one IQM's values (finite, one per image) with their hover titles, labels, flags and links.

    Points are spread vertically by a deterministic low-discrepancy sequence
    in value order, so neighbours rarely overlap and the page is the same on
    every run.
    """
    data = np.asarray(values, dtype=np.float64)
    low, high = _domain(data)

    def to_x(value: float) -> float:
        return LEFT + (value - low) / (high - low) * (RIGHT - LEFT)

    order = np.argsort(data, kind="stable")
    spread = np.empty(data.size)
    spread[order] = [((k * _GOLDEN) % 1.0 - 0.5) * 2.0 for k in range(data.size)]
    points = [
        StripPoint(to_x(value), CENTRE_Y + JITTER_Y * float(offset), title, label, bool(flag), href)
        for value, offset, title, label, flag, href in zip(
            data, spread, titles, labels, flagged, hrefs, strict=True
        )
    ]
    ticks = [
        (to_x(float(tick)), f"{tick:.4g}")
        for tick in MaxNLocator(nbins=5).tick_values(low, high)
        if low <= tick <= high
    ]
    q1, median, q3 = np.percentile(data, [25.0, 50.0, 75.0])
    inside = data[(data >= fences[0]) & (data <= fences[1])]
    reach = (float(inside.min()), float(inside.max())) if inside.size else (float(q1), float(q3))
    return StripPlot(
        points=points,
        ticks=ticks,
        box=(to_x(float(q1)), to_x(float(median)), to_x(float(q3))),
        whiskers=(to_x(reach[0]), to_x(reach[1])),
    )
