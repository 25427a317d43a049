"""Train and validation bits per character against steps, drawn in braille dots.

The history is kept downsampled (``Series`` halves itself when it grows past a
cap), so drawing costs the same after a minute or a day.
"""

from __future__ import annotations

import math

from charnn.tui import braille
from charnn.tui.widgets.line_chart import LineChart

VAL_MARK = "●"


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


class LossChart(LineChart):
    """Bits per character (y) against training steps (x): train as a line, val as dots."""

    DEFAULT_CSS = """
    LossChart { height: 1fr; min-height: 6; }
    """
    COMPONENT_CLASSES = {"loss-chart--train", "loss-chart--val", "loss-chart--axis", "loss-chart--title"}
    empty = "waiting for the first training steps…"
    x_suffix = " steps"

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None):
        super().__init__(name=name, id=id, classes=classes)
        self.train = Series()
        self.val = Series(cap=1024)

    @property
    def _prefix(self) -> str:
        return "loss-chart"

    # -- data -------------------------------------------------------------------------
    def add_train(self, step: float, bpc: float) -> None:
        self.train.add(step, bpc)
        self.changed()

    def add_val(self, step: float, bpc: float) -> None:
        self.val.add(step, bpc)
        self.changed()

    def clear(self) -> None:
        self.train.clear()
        self.val.clear()
        self.changed()

    # -- what to draw -----------------------------------------------------------------
    def legend(self) -> list[tuple[str, str]]:
        legend = [(" bits/char ", "title"), ("⣀ train", "train"), ("  ", braille.AXIS), (f"{VAL_MARK} val", "val")]
        if len(self.val):
            best_i = min(range(len(self.val)), key=self.val.ys.__getitem__)
            legend.append((f"  best {self.val.ys[best_i]:.3f} @{braille.tick_count(self.val.xs[best_i])}",
                           braille.AXIS))
        elif len(self.train):
            legend.append((f"  now {self.train.ys[-1]:.3f}", braille.AXIS))
        return legend

    def lines(self) -> list[braille.Line]:
        return [braille.Line(self.train.xs, self.train.ys, "train", column_mean=True),
                braille.Line(self.val.xs, self.val.ys, "val", mark=VAL_MARK)]
