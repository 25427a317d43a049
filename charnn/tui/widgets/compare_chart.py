"""Several runs' validation curves overlaid: bits/char against tokens seen or against time."""

from __future__ import annotations

from charnn.tui import braille
from charnn.tui.run_curves import AXES, RunCurve
from charnn.tui.widgets.line_chart import LineChart

MARK = "●"


class CompareChart(LineChart):
    """One coloured line per run; ``axis`` is "tokens" or "seconds"."""

    empty = "mark two or more runs (space) to compare their curves"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.curves: list[RunCurve] = []
        self.axis = "tokens"

    def show(self, curves: list[RunCurve], axis: str | None = None) -> None:
        self.curves = curves
        self.axis = axis or self.axis
        self.changed()

    @property
    def x_suffix(self) -> str:  # type: ignore[override]
        return " tokens" if self.axis == "tokens" else ""

    def x_format(self, x: float) -> str:
        return braille.tick_count(x) if self.axis == "tokens" else braille.tick_seconds(x)

    def legend(self) -> list[tuple[str, str]]:
        out = [(f" val bits/char against {AXES[self.axis]} (x) ", "title")]
        for i, c in enumerate(self.curves):
            out += [(f"{MARK} {c.name}", str(i)), ("  ", "")]
        return out

    def lines(self) -> list[braille.Line]:
        return [braille.Line(c.xs(self.axis), c.bpc, str(i), mark=MARK) for i, c in enumerate(self.curves)]
