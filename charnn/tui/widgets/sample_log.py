"""The samples a run writes as it learns: newest on top, or as a time-lapse of one text, oldest first.

Every sample of a run starts from the same prime and seed, so read oldest first they are one text
getting better: noise, then words, then names and verse.
"""

from __future__ import annotations

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

MAX_SAMPLES = 200
TITLES = {False: "samples · newest first", True: "samples · time-lapse, oldest first"}


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
    """A scrolling column of samples, newest first; ``flip`` turns it into the time-lapse (oldest first)
    and back."""

    DEFAULT_CSS = """
    SampleLog { height: 1fr; }
    SampleLog > .sample-entry { height: auto; border-top: solid $primary 40%; padding: 0 1; }
    SampleLog > #sample-empty { color: $text-muted; padding: 0 1; }
    """

    timelapse = False  # False: newest first; True: the time-lapse, oldest first

    def compose(self):
        yield Static("Samples appear here as the model learns, newest on top.", id="sample-empty")

    def on_mount(self) -> None:
        self.border_title = TITLES[self.timelapse]

    def add(self, step: int, text: str, val_bpc: float | None = None) -> None:
        self.query_one("#sample-empty").display = False
        entries = self.samples
        newest = entries[-1] if self.timelapse and entries else entries[0] if entries else None
        if len(entries) >= MAX_SAMPLES:
            # full: the oldest entry is rewritten and moved to the newest end, so a long run never creates
            # (and Textual never has to forget) more than MAX_SAMPLES widgets (benchmarks/soak.py --replay)
            oldest = entries[0] if self.timelapse else entries[-1]
            oldest.show(step, text, val_bpc)
            self._place(oldest, newest)
        elif newest is not None:
            self._place(SampleEntry(step, text, val_bpc), newest)
        else:
            self.mount(SampleEntry(step, text, val_bpc))
        if not self.timelapse:
            self.scroll_home(animate=False)

    def _place(self, entry: SampleEntry, newest: SampleEntry) -> None:
        """Put ``entry`` at the newest end: after ``newest`` in the time-lapse, else before it."""
        where = {"after": newest} if self.timelapse else {"before": newest}
        if entry.parent is self:
            self.move_child(entry, **where)
        else:
            self.mount(entry, **where)

    def flip(self) -> None:
        """Newest first <-> the time-lapse, oldest first; the view starts at the top."""
        self.timelapse = not self.timelapse
        entries = self.samples
        head = entries[0] if entries else None
        for entry in entries[1:]:  # each in turn to the top: the order reversed
            self.move_child(entry, before=head)
            head = entry
        self.border_title = TITLES[self.timelapse]
        self.scroll_home(animate=False)

    def clear(self) -> None:
        self.query(SampleEntry).remove()
        self.query_one("#sample-empty").display = True

    @property
    def samples(self) -> list[SampleEntry]:
        """The entries in the order shown."""
        return list(self.query(SampleEntry))
