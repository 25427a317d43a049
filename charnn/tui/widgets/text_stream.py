"""A scrolling pane that text streams into, piece by piece (generated samples, chat replies)."""

from __future__ import annotations

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static


class TextStream(VerticalScroll, can_focus=True):
    """Shows ``prompt`` (bold) followed by the text appended so far; follows the end while streaming."""

    DEFAULT_CSS = """
    TextStream { height: 1fr; border: round $primary 50%; padding: 0 1; }
    TextStream:focus { border: round $accent; }
    TextStream > Static { width: 1fr; }
    """

    def __init__(self, placeholder: str = "", **kwargs):
        super().__init__(**kwargs)
        self.placeholder = placeholder
        self.prompt = ""
        self.text = ""

    def compose(self):
        yield Static(Text(self.placeholder, style="dim"), classes="stream-body")

    def reset(self, prompt: str = "") -> None:
        self.prompt, self.text = prompt, ""
        self._show()

    def append(self, piece: str) -> None:
        follow = self.scroll_y >= self.max_scroll_y - 1
        self.text += piece
        self._show()
        if follow:
            self.call_after_refresh(self.scroll_end, animate=False)

    def _show(self) -> None:
        body = self.query_one(".stream-body", Static)
        if not self.prompt and not self.text:
            body.update(Text(self.placeholder, style="dim"))
            return
        body.update(Text.assemble((self.prompt, "bold"), self.text))

    @property
    def full_text(self) -> str:
        return self.prompt + self.text
