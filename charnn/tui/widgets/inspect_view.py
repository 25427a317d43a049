"""A text with a colour behind each character and a cursor that moves over it (the Inspect screen).

Lines wrap at words, like ``TextStream``; a newline shows as a coloured blank at the end of its line
(the model pays for newlines too). Moving the cursor posts ``CursorMoved``.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from charnn.tui.widgets.text_stream import wrap_rows


def layout_rows(text: str, width: int) -> list[tuple[int, int]]:
    """(start, end) of each screen row in ``text``; a paragraph's last row takes its newline."""
    rows, offset = [], 0
    for para in text.split("\n"):
        spans = wrap_rows(para, max(1, width - 1), 0)
        rows += [(offset + a, offset + b) for a, b in spans]
        offset += len(para) + 1
        if offset <= len(text):  # the newline sits at the end of the paragraph's last row
            a, b = rows[-1]
            rows[-1] = (a, b + 1)
    return rows


class InspectView(ScrollView, can_focus=True):
    """Shows ``text`` with ``colours[i]`` ("#rrggbb") behind character i and a cursor."""

    DEFAULT_CSS = """
    InspectView { height: 1fr; border: round $primary 50%; padding: 0 1; scrollbar-size-vertical: 1; }
    InspectView:focus { border: round $accent; }
    """
    BINDINGS = [
        Binding("left", "move(-1)", show=False), Binding("right", "move(1)", show=False),
        Binding("up", "move_row(-1)", show=False), Binding("down", "move_row(1)", show=False),
        Binding("pageup", "move_row(-10)", show=False), Binding("pagedown", "move_row(10)", show=False),
        Binding("home", "move(-1000000000)", show=False), Binding("end", "move(1000000000)", show=False),
    ]

    class CursorMoved(Message):
        def __init__(self, index: int):
            super().__init__()
            self.index = index

    def __init__(self, placeholder: str = "", **kwargs):
        super().__init__(**kwargs)
        self.placeholder = placeholder
        self.text = ""
        self.colours: list[str] = []
        self.cursor = 0
        self._rows: list[tuple[int, int]] = []
        self._width = 0
        self._styles: dict[str, Style] = {}

    def show(self, text: str, colours: list[str], keep_cursor: bool = False) -> None:
        self.text, self.colours = text, colours
        self.cursor = min(self.cursor, max(len(text) - 1, 0)) if keep_cursor else 0
        self._rewrap()
        self.refresh()
        self.post_message(self.CursorMoved(self.cursor))

    def recolour(self, colours: list[str]) -> None:
        self.colours = colours
        self.refresh()

    # -- cursor -----------------------------------------------------------------------
    def action_move(self, delta: int) -> None:
        self.move_to(self.cursor + delta)

    def action_move_row(self, delta: int) -> None:
        if not self._rows:
            return
        row = self._row_of(self.cursor)
        target = min(max(row + delta, 0), len(self._rows) - 1)
        start, end = self._rows[target]
        self.move_to(min(start + self.cursor - self._rows[row][0], max(end - 1, start)))

    def move_to(self, index: int) -> None:
        if not self.text:
            return
        self.cursor = min(max(index, 0), len(self.text) - 1)
        row = self._row_of(self.cursor)
        self.scroll_to_region(Region(0, row, 1, 1), animate=False, immediate=True)
        self.refresh()
        self.post_message(self.CursorMoved(self.cursor))

    def _row_of(self, index: int) -> int:
        for r, (a, b) in enumerate(self._rows):
            if a <= index < b:
                return r
        return max(len(self._rows) - 1, 0)

    # -- layout and drawing -------------------------------------------------------------
    def _rewrap(self) -> None:
        width = max(1, self.content_region.width - self.styles.scrollbar_size_vertical or 80)
        self._width = width
        self._rows = layout_rows(self.text, width) if self.text else []
        self.virtual_size = Size(width, len(self._rows))

    def on_resize(self) -> None:
        self._rewrap()
        self.refresh()

    def _style(self, colour: str) -> Style:
        if colour not in self._styles:
            self._styles[colour] = Style(bgcolor=colour, color="#f0f0f0")
        return self._styles[colour]

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        index = self.scroll_offset.y + y
        if not self.text:
            text = self.placeholder if y == 0 else ""
            return Strip([Segment(text, base + Style(dim=True))]).crop_extend(0, width, base)
        if index >= len(self._rows):
            return Strip.blank(width, base)
        a, b = self._rows[index]
        segments = []
        for i in range(a, b):
            ch = " " if self.text[i] in "\n\t" else self.text[i]
            style = self._style(self.colours[i]) if i < len(self.colours) else base
            if i == self.cursor:
                style = style + Style(reverse=True, bold=True)
            segments.append(Segment(ch, style))
        return Strip(Segment.simplify(segments)).crop_extend(0, width, base)
