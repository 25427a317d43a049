"""A widget that draws line charts in braille dots (``charnn.tui.braille``) and keeps the drawing
until its data or size changes. Subclasses say what to draw: a legend and the lines."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from charnn.tui import braille
from charnn.tui.widgets.palette import PALETTE


class LineChart(Widget):
    """Draws ``legend()`` on the first line and ``lines()`` below it; ``empty`` when there are none."""

    DEFAULT_CSS = """
    LineChart { height: 1fr; min-height: 6; }
    """
    COMPONENT_CLASSES = {"line-chart--axis", "line-chart--title"}
    empty = "nothing to draw yet"
    x_suffix = ""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None):
        super().__init__(name=name, id=id, classes=classes)
        self._lines: list[Strip] | None = None
        self._key: tuple = ()
        self._version = 0

    # -- what to draw (subclasses) -------------------------------------------------------
    def legend(self) -> list[tuple[str, str]]:
        return []

    def lines(self) -> list[braille.Line]:
        return []

    def x_format(self, x: float) -> str:
        return braille.tick_count(x)

    def y_format(self, y: float) -> str:
        return f"{y:.2f}"

    def scale(self, lines: list[braille.Line]) -> braille.Scale | None:
        return braille.fit_scale(lines)

    def style_of(self, role: str) -> Style:
        """The style of a role: a component class of this widget, else a palette index ("0", "1", ...)."""
        if role.isdigit():
            return Style(color=PALETTE[int(role) % len(PALETTE)])
        return self.get_component_rich_style(f"{self._prefix}--{role}", partial=True)

    @property
    def _prefix(self) -> str:
        return "line-chart"

    # -- drawing ----------------------------------------------------------------------
    def changed(self) -> None:
        self._version += 1
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines = None

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        key = (self._version, width, height)
        if self._lines is None or key != self._key:
            self._lines = self._draw(width, height)
            self._key = key
        return self._lines[y] if y < len(self._lines) else Strip.blank(width)

    def _strip(self, pieces: list[tuple[str, str]], width: int) -> Strip:
        base = self.rich_style
        segs = [Segment(text, base + self.style_of(role) if role else base) for text, role in pieces]
        return Strip(segs).adjust_cell_length(width, base).crop(0, width)

    def _draw(self, width: int, height: int) -> list[Strip]:
        out = [self._strip(self.legend(), width)]
        lines = [line for line in self.lines() if len(line.xs)]
        if height - 2 < 2 or width < 16:
            return out + [Strip.blank(width, self.rich_style) for _ in range(height - 1)]
        rows = braille.chart(lines, width, height - 1, self.scale(lines), self.x_format, self.x_suffix,
                             self.y_format) if lines else None
        if rows is None:
            middle = (height - 2) // 2
            return out + [self._strip([((self.empty if i == middle else "").center(width), braille.AXIS)], width)
                          for i in range(height - 1)]
        return out + [self._strip(row, width) for row in rows]
