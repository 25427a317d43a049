"""The samples a run writes as it learns, newest on top: noise turning into words."""

from __future__ import annotations

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

MAX_SAMPLES = 200


def sample_title(step: int, val_bpc: float | None) -> str:
    bpc = f" · val {val_bpc:.3f} bpc" if val_bpc is not None else ""
    return f"step {step:,}{bpc}"


class SampleEntry(Static):
    """One sample: its step and val bpc as a title, the text as written (never parsed as markup)."""

    def __init__(self, step: int, text: str, val_bpc: float | None):
        super().__init__(classes="sample-entry")
        self.show(step, text, val_bpc)

    def show(self, step: int, text: str, val_bpc: float | None) -> None:
        self.step = step
        self.text = text
        self.update(Text(text.strip("\n") or "(empty sample)"))
        self.border_title = sample_title(step, val_bpc)


class SampleLog(VerticalScroll):
    """A scrolling column of samples; ``add`` puts the newest first."""

    DEFAULT_CSS = """
    SampleLog { height: 1fr; }
    SampleLog > .sample-entry { height: auto; border-top: solid $primary 40%; padding: 0 1; }
    SampleLog > #sample-empty { color: $text-muted; padding: 0 1; }
    """

    def compose(self):
        yield Static("Samples appear here as the model learns, newest on top.", id="sample-empty")

    def add(self, step: int, text: str, val_bpc: float | None = None) -> None:
        self.query_one("#sample-empty").display = False
        entries = list(self.query(SampleEntry))
        if len(entries) >= MAX_SAMPLES:
            # full: the oldest entry is rewritten and moved to the top, so a long run never creates
            # (and Textual never has to forget) more than MAX_SAMPLES widgets (benchmarks/soak.py --replay)
            oldest = entries[-1]
            oldest.show(step, text, val_bpc)
            self.move_child(oldest, before=entries[0])
        elif entries:
            self.mount(SampleEntry(step, text, val_bpc), before=entries[0])
        else:
            self.mount(SampleEntry(step, text, val_bpc))
        self.scroll_home(animate=False)

    def clear(self) -> None:
        self.query(SampleEntry).remove()
        self.query_one("#sample-empty").display = True

    @property
    def samples(self) -> list[SampleEntry]:
        return list(self.query(SampleEntry))
