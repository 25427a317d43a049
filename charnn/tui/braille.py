"""Line charts in braille dots, with no UI library: fit a scale, plot N series, label the axes.

Each terminal cell holds a 2x4 grid of dots, so a 60x12 chart has 120x48 points of resolution.
The training chart, the run comparison (a widget and ``charnn models --compare``) and the
gradient-flow chart all draw with ``chart``; each gets rows of ``(text, role)`` pieces and maps
the roles ("axis", or a series' own role) to its colours.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][col] within a cell
SETTLED = 0.05  # the share of the x range after which the y range is taken
AXIS = "axis"

Piece = tuple[str, str]  # (text, role); role "" is the background


@dataclass
class Line:
    """One series to draw: points joined by lines, each optionally marked."""

    xs: Sequence[float]
    ys: Sequence[float]
    role: str
    mark: str = ""  # a character drawn on each point ("" for none)
    column_mean: bool = False  # average the points landing in each dot column first (a noisy curve)


@dataclass
class Scale:
    x_lo: float
    x_hi: float
    y_lo: float
    y_hi: float


def nice_step(span: float, count: int) -> float:
    """A round tick spacing (1, 2 or 5 times a power of ten) giving about ``count`` ticks."""
    if span <= 0 or count <= 0:
        return 1.0
    raw = span / count
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def tick_count(x: float) -> str:
    """A compact axis label (3 significant figures: 500k, 1.2M); report.fmt_count is the table figure."""
    if x >= 1e9:
        return f"{x / 1e9:.3g}G"
    if x >= 1e6:
        return f"{x / 1e6:.3g}M"
    if x >= 1e3:
        return f"{x / 1e3:.3g}k"
    return f"{x:.0f}"


def tick_seconds(x: float) -> str:
    if x >= 3600:
        return f"{x / 3600:.3g}h"
    if x >= 60:
        return f"{x / 60:.3g}m"
    return f"{x:.3g}s"


def fit_scale(lines: Sequence[Line], settled: float = SETTLED, floor: float | None = 0.0) -> Scale | None:
    """The ranges that show every line (x from 0); None when there is nothing to draw.

    The first few percent of a run (loss falling from its start) would squash the rest into the
    bottom rows: the top is taken from what follows, and the start runs off the top."""
    xs = [x for line in lines for x in line.xs]
    ys = [y for line in lines for y in line.ys]
    if not xs:
        return None
    x_lo, x_hi = min(0.0, min(xs)), max(xs)
    y_lo, y_hi = min(ys), max(ys)
    later = [y for x, y in zip(xs, ys, strict=True) if x >= x_lo + settled * (x_hi - x_lo)]
    if settled and len(later) >= 8:
        y_hi = max(later)
    pad = max((y_hi - y_lo) * 0.06, 0.02)
    y_lo, y_hi = y_lo - pad, y_hi + pad
    if floor is not None:
        y_lo = max(floor, y_lo)
    return Scale(x_lo, x_hi if x_hi > x_lo else x_lo + 1, y_lo, y_hi)


class _Grid:
    """Dots per cell, and which role drew each cell last (a later line is drawn on top)."""

    def __init__(self, scale: Scale, width: int, height: int):
        self.s, self.w, self.h = scale, width, height
        self.bits = [[0] * width for _ in range(height)]
        self.role = [[""] * width for _ in range(height)]
        self.marks: dict[tuple[int, int], tuple[str, str]] = {}

    def to_px(self, x: float, y: float) -> tuple[int, int]:
        s, px_w, px_h = self.s, self.w * 2, self.h * 4
        px = int((x - s.x_lo) / (s.x_hi - s.x_lo) * (px_w - 1) + 0.5)
        py = int((s.y_hi - y) / (s.y_hi - s.y_lo) * (px_h - 1) + 0.5)
        return min(max(px, 0), px_w - 1), min(max(py, 0), px_h - 1)

    def dot(self, px: int, py: int, role: str) -> None:
        self.bits[py // 4][px // 2] |= DOTS[py % 4][px % 2]
        self.role[py // 4][px // 2] = role

    def segment(self, a: tuple[int, int], b: tuple[int, int], role: str) -> None:
        (x0, y0), (x1, y1) = a, b
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(steps + 1):
            self.dot(x0 + (x1 - x0) * i // steps, y0 + (y1 - y0) * i // steps, role)

    def draw(self, line: Line) -> None:
        points = [self.to_px(x, y) for x, y in zip(line.xs, line.ys, strict=True)]
        if line.column_mean:
            cols: dict[int, list[float]] = {}
            for (px, _), y in zip(points, line.ys, strict=True):
                acc = cols.setdefault(px, [0.0, 0])
                acc[0] += y
                acc[1] += 1
            points = [(px, self.to_px(self.s.x_lo, total / count)[1]) for px, (total, count) in sorted(cols.items())]
        prev = None
        for point in points:
            if prev:
                self.segment(prev, point, line.role)
            else:
                self.dot(*point, line.role)
            if line.mark:
                self.marks[(point[1] // 4, point[0] // 2)] = (line.mark, line.role)
            prev = point

    def row(self, r: int) -> list[Piece]:
        out: list[Piece] = []
        for c in range(self.w):
            if (r, c) in self.marks:
                out.append(self.marks[(r, c)])
            elif self.bits[r][c]:
                out.append((chr(0x2800 | self.bits[r][c]), self.role[r][c]))
            else:
                out.append((" ", ""))
        return out


def y_ticks(scale: Scale, plot_h: int) -> dict[int, float]:
    """Rows that carry a y label, and the value at each."""
    ticks = {0: scale.y_hi, plot_h - 1: scale.y_lo}
    if plot_h >= 5:
        for r in range(3, plot_h - 2, 3 if plot_h < 12 else 4):
            ticks[r] = scale.y_hi - (r + 0.5) / plot_h * (scale.y_hi - scale.y_lo)
    return ticks


def x_axis(scale: Scale, plot_w: int, fmt: Callable[[float], str], suffix: str = "") -> str:
    """Tick labels at round values under the plot, and ``suffix`` (the unit) when it fits."""
    axis = [" "] * plot_w
    step = nice_step(scale.x_hi - scale.x_lo, max(1, plot_w // 12))
    tick = math.ceil(scale.x_lo / step) * step
    while tick <= scale.x_hi:
        pos = int((tick - scale.x_lo) / (scale.x_hi - scale.x_lo) * (plot_w - 1) + 0.5)
        text = fmt(tick)
        start = min(pos, plot_w - len(text))
        if all(ch == " " for ch in axis[max(0, start - 1): start + len(text) + 1]):
            axis[start: start + len(text)] = list(text)
        tick += step
    tail = "".join(axis).rstrip()
    return tail + suffix if len(tail) + len(suffix) <= plot_w else tail


def chart(lines: Sequence[Line], width: int, height: int, scale: Scale | None = None,
          x_fmt: Callable[[float], str] = tick_count, x_suffix: str = "",
          y_fmt: Callable[[float], str] = "{:.2f}".format) -> list[list[Piece]] | None:
    """``height`` rows (the plot, then the x axis) of ``width`` cells; None when nothing fits or
    there is nothing to draw."""
    scale = scale or fit_scale(lines)
    plot_h = height - 1
    if scale is None or plot_h < 2 or width < 16:
        return None
    ticks = y_ticks(scale, plot_h)
    label_w = max(len(y_fmt(scale.y_hi)), len(y_fmt(scale.y_lo)))
    plot_w = width - label_w - 2
    grid = _Grid(scale, plot_w, plot_h)
    for line in lines:
        grid.draw(line)
    rows = []
    for r in range(plot_h):
        label = y_fmt(ticks[r]).rjust(label_w) if r in ticks else " " * label_w
        rows.append([(label + " " + ("┤" if r in ticks else "│"), AXIS), *grid.row(r)])
    rows.append([(" " * label_w + " └" + x_axis(scale, plot_w, x_fmt, x_suffix), AXIS)])
    return rows


def plain(rows: list[list[Piece]]) -> list[str]:
    """The rows as plain text (for a file, a pipe or a test)."""
    return ["".join(text for text, _ in row).rstrip() for row in rows]
