"""Showing training events: rich progress on a terminal, plain lines otherwise, or JSON lines.

Everything goes to stderr except ``--jsonl`` (stdout, one event per line), so
generated text and machine-readable output never mix with messages.
"""

from __future__ import annotations

import math
import sys
from typing import TextIO

from charnn.training.events import (
    Checkpoint,
    Done,
    Error,
    Eval,
    Event,
    Notice,
    Sample,
    Start,
    Step,
    to_json,
)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def fmt_count(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f}{unit}"
    return f"{n:.0f}"


PERIODIC_MARK = "*"
SCORE_LEGEND = (f"{PERIODIC_MARK} the best periodic check (a slice of the held-out text); unmarked: the whole "
                f"held-out text, as `charnn eval` scores it")


def _figure(held_out, best) -> tuple[float, bool] | None:
    """A model's validation figure and whether it is only periodic: the whole held-out text (the
    closing evaluation, what `charnn eval` measures) if there is one, else the best periodic check,
    which reads a slice of it."""
    for value, periodic in ((held_out, False), (best, True)):
        if isinstance(value, int | float) and math.isfinite(value):
            return float(value), periodic
    return None


def score(held_out, best) -> str:
    """The figure in words: "held-out 2.026 bpc", "val 1.956 bpc (periodic)" or ""."""
    if (figure := _figure(held_out, best)) is None:
        return ""
    value, periodic = figure
    return f"val {value:.3f} bpc (periodic)" if periodic else f"held-out {value:.3f} bpc"


def score_cell(held_out, best) -> str:
    """The figure for a table column: "2.026" (held-out), "1.956*" (periodic only) or "-"."""
    if (figure := _figure(held_out, best)) is None:
        return "-"
    value, periodic = figure
    return f"{value:.3f}{PERIODIC_MARK if periodic else ''}"


def model_shape(start: Start) -> str:
    """'1x512 lstm, embedding 80, dropout 0.1, weight decay 0.1 | ' from the run's settings (empty
    if they don't say)."""
    settings = start.settings if isinstance(start.settings, dict) else {}
    m, t = settings.get("model", {}), settings.get("train", {})
    if not m.get("layers") or not m.get("hidden"):
        return ""
    emb = f", embedding {m['embedding']}" if m.get("embedding") and m["embedding"] != m["hidden"] else ""
    drop = f", dropout {m['dropout']:g}" if m.get("dropout") else ""
    decay = f", weight decay {t['weight_decay']:g}" if t.get("weight_decay") else ""
    return f"{m['layers']}x{m['hidden']} {m.get('cell', 'lstm')}{emb}{drop}{decay} | "


def teacher_forcing_schedule(start: Start):
    """A chat run's scheduled-sampling schedule from its settings; None for plain teacher forcing."""
    if start.mode != "chat":
        return None
    from charnn.errors import CharnnError
    from charnn.training.teacher_forcing import parse_teacher_forcing

    try:
        schedule = parse_teacher_forcing(start.settings.get("train", {}).get("teacher_forcing", "1"))
    except CharnnError:
        return None
    return None if schedule.always else schedule


def teacher_forcing_of(step: Step, schedule) -> float | None:
    """The ratio a Step event carries, else the one its run's schedule gives for the step it reports."""
    if step.teacher_forcing is not None:
        return step.teacher_forcing
    return schedule.ratio(max(step.step - 1, 0)) if schedule is not None else None


class JsonlReporter:
    def __init__(self, out: TextIO | None = None):
        self.out = out or sys.stdout

    def __call__(self, event: Event) -> None:
        self.out.write(to_json(event) + "\n")
        self.out.flush()

    def close(self) -> None:
        pass


class EventLog:
    """Appends every event to ``events.jsonl`` in the run directory, so a UI can follow
    or re-attach to a run it did not start (``charnn tui --run NAME``)."""

    def __init__(self):
        self.file = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, Start):
            from pathlib import Path

            run = Path(event.run_dir)
            run.mkdir(parents=True, exist_ok=True)
            self.file = open(run / "events.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        if self.file is not None:
            self.file.write(to_json(event) + "\n")
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class PlainReporter:
    """Periodic log lines for files, pipes and CI logs."""

    def __init__(self, out: TextIO | None = None, every_s: float = 10.0, quiet: bool = False):
        self.out = out or sys.stderr
        self.every_s = every_s
        self.quiet = quiet
        self._last = -1e9
        self.schedule = None

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def __call__(self, e: Event) -> None:
        if self.quiet and not isinstance(e, Error | Done):
            return
        if isinstance(e, Start):
            self.schedule = teacher_forcing_schedule(e)
            what = f"resuming {e.run_name} at step {e.resumed_step}" if e.resumed_step else f"run {e.run_name}"
            self._line(
                f"charnn: {what} | {e.mode} | {e.tokenizer} vocab {e.vocab_size} | {model_shape(e)}"
                f"{fmt_count(e.parameters)} params | {fmt_count(e.train_tokens)} train / "
                f"{fmt_count(e.val_tokens)} val tokens | {e.device} | budget {e.budget}"
            )
            self._line(f"charnn: saving to {e.run_dir} (Ctrl-C stops and saves)")
        elif isinstance(e, Step):
            if e.elapsed_s - self._last >= self.every_s:
                self._last = e.elapsed_s
                tf = teacher_forcing_of(e, self.schedule)
                self._line(
                    f"step {e.step:>6} | epoch {e.epoch:5.2f} | loss {e.loss:.4f} | {e.bpc:.3f} bpc | "
                    f"lr {e.lr:.2e} | {'' if tf is None else f'tf {tf:.2f} | '}{fmt_count(e.tokens_per_s)} tok/s | "
                    f"{fmt_duration(e.elapsed_s)} elapsed | eta {fmt_duration(e.eta_s)}"
                )
        elif isinstance(e, Eval):
            mark = " *" if e.improved else ""
            label = "final val" if e.final else "val"
            self._line(f"step {e.step:>6} | {label} loss {e.val_loss:.4f} | {label} {e.val_bpc:.3f} bpc{mark}")
        elif isinstance(e, Sample):
            self._line(f"--- sample at step {e.step} ---\n{e.text}\n---")
        elif isinstance(e, Notice):
            self._line(f"charnn: {e.message}")
        elif isinstance(e, Checkpoint):
            pass
        elif isinstance(e, Done):
            figure = score(e.held_out_bpc, e.best_val_bpc) or "not evaluated"
            self._line(
                f"charnn: done ({e.reason}) at step {e.step} after {fmt_duration(e.elapsed_s)} | "
                f"{figure} | {fmt_count(e.tokens_per_s)} tok/s | {e.run_dir}"
            )
        elif isinstance(e, Error):
            self._line(f"charnn: error: {e.message}")

    def close(self) -> None:
        pass


class RichReporter:
    """A live progress bar with loss, val bpc, throughput and ETA; samples printed above it."""

    def __init__(self, quiet: bool = False):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.quiet = quiet
        self.plain = PlainReporter(quiet=quiet)
        self.progress = Progress(
            TextColumn("[bold]{task.fields[phase]}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("step {task.fields[step]}"),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("val [cyan]{task.fields[val]}[/] bpc"),
            TextColumn("{task.fields[tf]}{task.fields[rate]} tok/s"),
            TimeElapsedColumn(),
            TextColumn("eta {task.fields[eta]}"),
            console=self.console,
            transient=True,
        )
        self.task = None
        self.val = "-"

    def __call__(self, e: Event) -> None:
        if self.quiet:
            self.plain(e)
            return
        if isinstance(e, Start):
            self.plain(e)
            self.progress.start()
            self.task = self.progress.add_task("train", total=1.0, phase="training", step=0,
                                               loss="-", val="-", rate="-", eta="?", tf="")
        elif isinstance(e, Step) and self.task is not None:
            ratio = teacher_forcing_of(e, self.plain.schedule)
            self.progress.update(self.task, completed=e.progress, step=e.step, loss=f"{e.loss:.3f}",
                                 val=self.val, rate=fmt_count(e.tokens_per_s), eta=fmt_duration(e.eta_s),
                                 tf="" if ratio is None else f"tf {ratio:.2f}  ")
        elif isinstance(e, Eval):
            self.val = f"{e.val_bpc:.3f}"
            if self.task is not None:
                self.progress.update(self.task, val=self.val)
            mark = " [green]*best*[/]" if e.improved else ""
            label = "final val" if e.final else "val"
            self.console.print(f"step {e.step}: {label} loss {e.val_loss:.4f} nats, "
                               f"[cyan]{e.val_bpc:.3f}[/] bits/char{mark}")
        elif isinstance(e, Sample):
            from rich.panel import Panel
            from rich.text import Text

            title = f"sample at step {e.step}" + (f" · val {e.val_bpc:.3f} bpc" if e.val_bpc else "")
            self.console.print(Panel(Text(e.text), title=title, title_align="left", border_style="dim"))
        elif isinstance(e, Done):
            self.close()
            self.plain(e)
        elif isinstance(e, Notice | Error):
            self.console.print(f"[yellow]charnn:[/] {e.message}" if isinstance(e, Notice)
                               else f"[red]charnn: error:[/] {e.message}")

    def close(self) -> None:
        if self.task is not None:
            self.progress.stop()
            self.task = None


def make_reporter(jsonl: bool = False, quiet: bool = False):
    if jsonl:
        return JsonlReporter()
    if sys.stderr.isatty():
        return RichReporter(quiet=quiet)
    return PlainReporter(quiet=quiet)
