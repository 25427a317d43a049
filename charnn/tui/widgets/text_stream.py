"""A scrolling pane that text streams into, piece by piece (generated samples).

It draws lines itself (Textual's line API, like ``Log``) and wraps words as
the text arrives. Appending re-wraps only the last row, and only the visible
rows are ever drawn, so streaming 100k characters costs the UI what streaming
500 does: a ``Static`` that re-wraps all its text on every update made long
outputs stall the UI for hundreds of milliseconds.
"""

from __future__ import annotations

from rich.cells import get_character_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

Row = tuple[int, int, int]  # paragraph index, start, end


def wrap_rows(text: str, width: int, start: int = 0) -> list[tuple[int, int]]:
    """Greedy word wrap of ``text[start:]`` into (start, end) rows of at most ``width`` cells."""
    width = max(1, width)
    rows = []
    n = len(text)
    while True:
        end, used = start, 0
        while end < n:
            w = get_character_cell_size(text[end])
            if used + w > width:
                break
            used += w
            end += 1
        if end >= n:
            rows.append((start, n))
            return rows
        space = text.rfind(" ", start, end + 1)
        cut = space + 1 if space >= start and space + 1 > start else end
        if cut <= start:
            cut = start + 1
        rows.append((start, cut))
        start = cut


class TextStream(ScrollView, can_focus=True):
    """Shows ``prompt`` (bold) followed by the text appended so far; follows the end while streaming."""

    DEFAULT_CSS = """
    TextStream { height: 1fr; border: round $primary 50%; padding: 0 1; scrollbar-size-vertical: 1; }
    TextStream:focus { border: round $accent; }
    """

    def __init__(self, placeholder: str = "", **kwargs):
        super().__init__(**kwargs)
        self.placeholder = placeholder
        self.prompt = ""
        self.text = ""
        self._paragraphs: list[str] = [""]
        self._offsets: list[int] = [0]  # where each paragraph starts in prompt + text
        self._rows: list[Row] = []
        self._width = 0
        self.highlights: list[tuple[int, int]] = []  # (start, end) in ``text`` shown marked (novelty: copied spans)

    # -- content ----------------------------------------------------------------------
    def reset(self, prompt: str = "") -> None:
        self.prompt, self.text = prompt, ""
        self.highlights = []
        self._paragraphs, self._offsets = [""], [0]
        self._rows = []
        self._extend(prompt)
        self.scroll_home(animate=False, immediate=True)
        self.refresh()

    def append(self, piece: str) -> None:
        follow = self.is_vertical_scroll_end
        self.text += piece
        self._extend(piece)
        if follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

    def highlight(self, spans: list[tuple[int, int]]) -> None:
        """Mark these spans of the streamed text (not the prompt)."""
        self.highlights = list(spans)
        self.refresh()

    @property
    def full_text(self) -> str:
        return self.prompt + self.text

    # -- wrapping ---------------------------------------------------------------------
    def _extend(self, piece: str) -> int:
        """Add ``piece`` to the paragraphs and re-wrap what changed; the first changed row."""
        if not piece and self._rows:
            return len(self._rows)
        parts = piece.split("\n")
        last = len(self._paragraphs) - 1
        self._paragraphs[last] += parts[0]
        for part in parts[1:]:
            self._offsets.append(self._offsets[-1] + len(self._paragraphs[-1]) + 1)
            self._paragraphs.append(part)
        # greedy wrapping is prefix-stable: only the last row of the last old paragraph can change
        width = self._wrap_width()
        resume_at = 0
        if self._rows and self._rows[-1][0] == last:
            resume_at = self._rows.pop()[1]
        first_changed = len(self._rows)
        self._rows.extend(self._rows_for(last, width, resume_at))
        for index in range(last + 1, len(self._paragraphs)):
            self._rows.extend(self._rows_for(index, width, 0))
        self.virtual_size = Size(width, len(self._rows))
        return first_changed

    def _rows_for(self, index: int, width: int, start: int) -> list[Row]:
        return [(index, s, e) for s, e in wrap_rows(self._paragraphs[index], width, start)]

    def _wrap_width(self) -> int:
        """Content width less a scrollbar's, whether one shows yet or not (so rows never re-wrap)."""
        width = self.content_region.width - self.styles.scrollbar_size_vertical
        return max(1, width if self.content_region.width else self._width or 80)

    def _rewrap(self) -> None:
        width = self._wrap_width()
        self._rows = [row for i in range(len(self._paragraphs)) for row in self._rows_for(i, width, 0)]
        self.virtual_size = Size(width, len(self._rows))

    def on_resize(self) -> None:
        width = self._wrap_width()
        if width != self._width:
            self._width = width
            self._rewrap()
            self.refresh()

    # -- drawing ----------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        index = self.scroll_offset.y + y
        if not self.prompt and not self.text:
            if y == 0 and self.placeholder:
                return Strip([Segment(self.placeholder, base + Style(dim=True))]).crop_extend(0, width, base)
            return Strip.blank(width, base)
        if index >= len(self._rows):
            return Strip.blank(width, base)
        para, start, end = self._rows[index]
        line = self._paragraphs[para][start:end]
        bold = max(0, min(len(line), len(self.prompt) - (self._offsets[para] + start)))
        if self.highlights:
            return self._marked_line(line, self._offsets[para] + start - len(self.prompt), bold, width)
        segments = []
        if bold:
            segments.append(Segment(line[:bold], base + Style(bold=True)))
        if line[bold:]:
            segments.append(Segment(line[bold:], base))
        return Strip(segments).crop_extend(0, width, base)

    def _marked_line(self, line: str, at: int, bold: int, width: int) -> Strip:
        """A row with the highlighted spans of the text in reverse video (``at``: its offset in ``text``)."""
        base = self.rich_style
        marked = Style(reverse=True, underline=True)
        segments = []
        for i, ch in enumerate(line):
            style = base + Style(bold=True) if i < bold else base
            if any(a <= at + i < b for a, b in self.highlights):
                style = style + marked
            segments.append(Segment(ch, style))
        return Strip(Segment.simplify(segments)).crop_extend(0, width, base)
