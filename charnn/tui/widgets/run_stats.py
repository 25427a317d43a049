"""The numbers of a run at a glance: step, bpc, throughput, time, ETA, learning rate, device."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from charnn.report import fmt_count, fmt_duration
from charnn.tui.run_state import RunState

STATUS_STYLE = {
    "training": "bold green", "starting": "bold yellow", "paused": "bold yellow",
    "stopping": "bold yellow", "done": "bold cyan", "failed": "bold red", "idle": "dim",
}


def progress_bar(fraction: float, width: int) -> str:
    width = max(4, width)
    filled = fraction * width
    full = int(filled)
    part = " ▏▎▍▌▋▊▉"[int((filled - full) * 8)] if full < width else ""
    return ("█" * full + part).ljust(width)[:width]


def bpc(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "–"


class RunStats(Static):
    """Renders a ``RunState`` as a two-column table; ``show`` redraws it."""

    DEFAULT_CSS = """
    RunStats { width: 32; height: 1fr; padding: 0 1; }
    """

    def __init__(self, **kwargs):
        super().__init__("", **kwargs)
        self.state = RunState()

    def show(self, state: RunState) -> None:
        self.state = state
        self.update(self._table())

    def on_resize(self) -> None:
        self.update(self._table())

    def _table(self) -> Table:
        s = self.state
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="dim", no_wrap=True, min_width=6)
        grid.add_column()  # wrappable, so rich shrinks this column and not the labels

        def add_row(label: str, value: str | Text) -> None:
            text = value if isinstance(value, Text) else Text(value)
            text.no_wrap, text.overflow = True, "ellipsis"
            grid.add_row(label, text)

        if s.status == "idle":
            add_row("status", Text("no run yet", style="dim"))
            return grid
        bar_w = max(4, self.size.width - 2 - 7 - 5) if self.size.width else 14
        add_row("run", s.run_name or "starting…")
        add_row("status", Text("● " + s.status_text, style=STATUS_STYLE.get(s.status, "")))
        add_row("step", f"{s.step:,}  epoch {s.epoch:.2f}")
        add_row("done", Text(progress_bar(s.progress, bar_w) + f" {s.progress:4.0%}"))
        add_row("train", f"{bpc(s.train_bpc)} bpc")
        best = f" (best {s.best_val_bpc:.3f})" if s.best_val_bpc is not None and s.best_val_bpc != s.val_bpc else ""
        add_row("val", f"{bpc(s.val_bpc)} bpc{best}")
        add_row("speed", f"{fmt_count(s.tokens_per_s)} tok/s" if s.tokens_per_s else "–")
        eta = f"  ETA {fmt_duration(s.eta_s)}" if s.active and s.eta_s is not None else ""
        add_row("time", f"{fmt_duration(s.elapsed_s)}{eta}")
        add_row("lr", f"{s.lr:.2e}" if s.lr else "–")
        if s.layers:
            add_row("model", f"{s.layers}×{s.hidden} {s.cell} · {fmt_count(s.parameters)} · {s.tokenizer}")
        if s.device:
            add_row("device", s.device)
        if s.gpu_mem_mib is not None:
            add_row("gpu mem", f"{s.gpu_mem_mib:,.0f} MiB peak")
        if s.budget:
            add_row("budget", s.budget)
        return grid
