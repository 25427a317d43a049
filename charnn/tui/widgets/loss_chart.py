"""Train and validation bits per character against steps, drawn in braille dots.

Each terminal cell holds a 2x4 grid of dots, so a 60x12 chart has 120x48
points of resolution. The history is kept downsampled (``Series`` halves itself
when it grows past a cap), so drawing costs the same after a minute or a day.
"""

from __future__ import annotations

import math

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][col] within a cell
VAL_MARK = "●"
SETTLED = 0.05  # the share of the x range after which the y range is taken


class Series:
    """(x, y) points, at most ``cap``: when full, neighbours are averaged in pairs."""

    def __init__(self, cap: int = 2048):
        self.cap = cap
        self.xs: list[float] = []
        self.ys: list[float] = []

    def __len__(self) -> int:
        return len(self.xs)

    def add(self, x: float, y: float) -> None:
        if not math.isfinite(y):
            return
        if self.xs and x < self.xs[-1]:  # a re-attached or resumed run repeats steps: keep order
            while self.xs and self.xs[-1] > x:
                self.xs.pop()
                self.ys.pop()
        self.xs.append(float(x))
        self.ys.append(float(y))
        if len(self.xs) > self.cap:
            n = len(self.xs) // 2 * 2
            self.xs = [(self.xs[i] + self.xs[i + 1]) / 2 for i in range(0, n, 2)] + self.xs[n:]
            self.ys = [(self.ys[i] + self.ys[i + 1]) / 2 for i in range(0, n, 2)] + self.ys[n:]

    def clear(self) -> None:
        self.xs.clear()
        self.ys.clear()


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


def fmt_steps(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.3g}M"
    if x >= 1e3:
        return f"{x / 1e3:.3g}k"
    return f"{x:.0f}"


class LossChart(Widget):
    """Bits per character (y) against training steps (x): train as a line, val as dots."""

    DEFAULT_CSS = """
    LossChart { height: 1fr; min-height: 6; }
    """
    COMPONENT_CLASSES = {"loss-chart--train", "loss-chart--val", "loss-chart--axis", "loss-chart--title"}

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None):
        super().__init__(name=name, id=id, classes=classes)
        self.train = Series()
        self.val = Series(cap=1024)
        self._lines: list[Strip] | None = None
        self._key: tuple = ()
        self._version = 0

    # -- data -------------------------------------------------------------------------
    def add_train(self, step: float, bpc: float) -> None:
        self.train.add(step, bpc)
        self._changed()

    def add_val(self, step: float, bpc: float) -> None:
        self.val.add(step, bpc)
        self._changed()

    def clear(self) -> None:
        self.train.clear()
        self.val.clear()
        self._changed()

    def _changed(self) -> None:
        self._version += 1
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines = None

    # -- drawing ----------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width, height = self.size
        key = (self._version, width, height)
        if self._lines is None or key != self._key:
            self._lines = self._draw(width, height)
            self._key = key
        return self._lines[y] if y < len(self._lines) else Strip.blank(width)

    def _styles(self) -> tuple[Style, Style, Style, Style]:
        return tuple(  # type: ignore[return-value]
            self.get_component_rich_style(f"loss-chart--{name}", partial=True)
            for name in ("train", "val", "axis", "title")
        )

    def _draw(self, width: int, height: int) -> list[Strip]:
        train_style, val_style, axis_style, title_style = self._styles()
        base = self.rich_style
        lines: list[Strip] = []

        def text_line(parts: list[tuple[str, Style]]) -> Strip:
            segs = [Segment(t, base + s) for t, s in parts]
            return Strip(segs).adjust_cell_length(width, base).crop(0, width)

        legend = [(" bits/char ", title_style), ("⣀ train", train_style), ("  ", axis_style), (f"{VAL_MARK} val", val_style)]
        if len(self.val):
            best_i = min(range(len(self.val)), key=self.val.ys.__getitem__)
            legend.append((f"  best {self.val.ys[best_i]:.3f} @{fmt_steps(self.val.xs[best_i])}", axis_style))
        elif len(self.train):
            legend.append((f"  now {self.train.ys[-1]:.3f}", axis_style))
        lines.append(text_line(legend))

        plot_h = height - 2
        if plot_h < 2 or width < 16:
            return lines + [Strip.blank(width, base) for _ in range(height - 1)]
        if not len(self.train) and not len(self.val):
            for i in range(height - 1):
                msg = "waiting for the first training steps…" if i == plot_h // 2 else ""
                lines.append(text_line([(msg.center(width), axis_style)]))
            return lines

        ys = self.train.ys + self.val.ys
        xs = self.train.xs + self.val.xs
        x_lo, x_hi = min(0.0, min(xs)), max(xs)
        y_lo, y_hi = min(ys), max(ys)
        # the first few percent of a run (loss falling from its start) would squash the rest
        # into the bottom rows: scale to what follows, and let the start run off the top
        settled = [y for x, y in zip(xs, ys, strict=True) if x >= x_lo + SETTLED * (x_hi - x_lo)]
        if len(settled) >= 8:
            y_hi = max(settled)
        pad = max((y_hi - y_lo) * 0.06, 0.02)
        y_lo, y_hi = max(0.0, y_lo - pad), y_hi + pad
        if x_hi <= x_lo:
            x_hi = x_lo + 1

        label_w = max(len(f"{y_hi:.2f}"), len(f"{y_lo:.2f}"))
        plot_w = width - label_w - 2
        px_w, px_h = plot_w * 2, plot_h * 4
        dots_train = [[0] * plot_w for _ in range(plot_h)]
        dots_val = [[0] * plot_w for _ in range(plot_h)]
        marks: set[tuple[int, int]] = set()

        def to_px(x: float, y: float) -> tuple[int, int]:
            px = int((x - x_lo) / (x_hi - x_lo) * (px_w - 1) + 0.5)
            py = int((y_hi - y) / (y_hi - y_lo) * (px_h - 1) + 0.5)
            return min(max(px, 0), px_w - 1), min(max(py, 0), px_h - 1)

        def plot(grid, px: int, py: int) -> None:
            grid[py // 4][px // 2] |= _DOTS[py % 4][px % 2]

        def line(grid, a: tuple[int, int], b: tuple[int, int]) -> None:
            (x0, y0), (x1, y1) = a, b
            steps = max(abs(x1 - x0), abs(y1 - y0), 1)
            for i in range(steps + 1):
                plot(grid, x0 + (x1 - x0) * i // steps, y0 + (y1 - y0) * i // steps)

        # train: mean of the points that land in each dot column, joined up
        cols: dict[int, list[float]] = {}
        for x, y in zip(self.train.xs, self.train.ys, strict=True):
            px, _ = to_px(x, y)
            acc = cols.setdefault(px, [0.0, 0])
            acc[0] += y
            acc[1] += 1
        prev = None
        for px in sorted(cols):
            total, count = cols[px]
            _, py = to_px(x_lo, total / count)
            point = (px, py)
            if prev:
                line(dots_train, prev, point)
            else:
                plot(dots_train, *point)
            prev = point
        # val: points joined by lines, each marked
        prev = None
        for x, y in zip(self.val.xs, self.val.ys, strict=True):
            point = to_px(x, y)
            if prev:
                line(dots_val, prev, point)
            marks.add((point[1] // 4, point[0] // 2))
            prev = point

        tick_rows = {0: y_hi, plot_h - 1: y_lo}
        if plot_h >= 5:
            for r in range(3, plot_h - 2, 3 if plot_h < 12 else 4):
                tick_rows[r] = y_hi - (r + 0.5) / plot_h * (y_hi - y_lo)
        for r in range(plot_h):
            label = f"{tick_rows[r]:.2f}".rjust(label_w) if r in tick_rows else " " * label_w
            segs = [Segment(label + " " + ("┤" if r in tick_rows else "│"), base + axis_style)]
            for c in range(plot_w):
                if (r, c) in marks:
                    segs.append(Segment(VAL_MARK, base + val_style))
                    continue
                bits_t, bits_v = dots_train[r][c], dots_val[r][c]
                if bits_t or bits_v:
                    segs.append(Segment(chr(0x2800 | bits_t | bits_v), base + (val_style if bits_v else train_style)))
                else:
                    segs.append(Segment(" ", base))
            lines.append(Strip(segs).adjust_cell_length(width, base))

        # x axis: the corner, then tick labels at round step counts
        axis = [" "] * plot_w
        step = nice_step(x_hi - x_lo, max(1, plot_w // 12))
        tick = math.ceil(x_lo / step) * step
        while tick <= x_hi:
            pos = int((tick - x_lo) / (x_hi - x_lo) * (plot_w - 1) + 0.5)
            text = fmt_steps(tick)
            start = min(pos, plot_w - len(text))
            if all(ch == " " for ch in axis[max(0, start - 1): start + len(text) + 1]):
                axis[start: start + len(text)] = list(text)
            tick += step
        suffix = " steps"
        tail = "".join(axis).rstrip()
        if len(tail) + len(suffix) <= plot_w:
            tail = tail + suffix
        lines.append(text_line([(" " * label_w + " └" + tail, axis_style)]))
        return lines
