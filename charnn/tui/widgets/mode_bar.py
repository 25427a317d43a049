"""The top line of every screen: the five screens with their keys, and the training status."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

SCREENS = (("train", "F1", "Train"), ("generate", "F2", "Generate"), ("chat", "F3", "Chat"), ("models", "F4", "Models"),
           ("inspect", "F5", "Inspect"))


class ModeBar(Horizontal):
    """Tabs for the screens (click or F1-F5) on the left, what training is doing on the right."""

    DEFAULT_CSS = """
    ModeBar { height: 1; dock: top; background: $panel; }
    ModeBar > #mode-brand { width: auto; text-style: bold; }
    ModeBar > #mode-tabs { width: auto; }
    ModeBar > #mode-status {
        width: 1fr; text-align: right; padding-right: 1; color: $text-muted;
        text-wrap: nowrap; text-overflow: ellipsis;
    }
    """

    def __init__(self, current: str):
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        yield Static(" charnn ", id="mode-brand")
        parts = []
        for mode, key, label in SCREENS:
            if mode == self.current:
                parts.append(f"[reverse b] {key} {label} [/]")
            else:
                parts.append(f"[@click=app.switch_mode('{mode}')] [dim]{key}[/dim] {label} [/]")
        yield Static("".join(parts), id="mode-tabs")
        yield Static("", id="mode-status", markup=False)

    def on_mount(self) -> None:
        self.watch(self.app, "training_status", self._show_status)

    def _show_status(self, status: str) -> None:
        self.query_one("#mode-status", Static).update(status)
