"""Train: choose a corpus and a size, start, then watch the loss fall and the samples improve.

The run trains in a child process (``charnn train ... --jsonl``); this screen
follows its events and turns each into a widget update. Pause and resume are
SIGSTOP/SIGCONT, stop is SIGINT (the trainer saves a resumable checkpoint).
"""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, ContentSwitcher, Footer, Input, Label, Select, Static

from charnn.report import fmt_count, score
from charnn.training.events import Checkpoint, Done, Error, Eval, Event, Notice, Sample, Start, Step
from charnn.tui.run_state import RunState
from charnn.tui.screens.dialogs import FilePicker
from charnn.tui.training_process import TrainingProcess
from charnn.tui.widgets.loss_chart import LossChart
from charnn.tui.widgets.mode_bar import ModeBar
from charnn.tui.widgets.run_stats import RunStats
from charnn.tui.widgets.sample_log import SampleLog

SIZES = (
    ("auto · sized to time, machine and text", "auto", None),  # presets.cpu_hidden + probe
    ("tiny 1×64", "tiny", (1, 64)),
    ("small 2×128 · quick on a CPU", "small", (2, 128)),
    ("medium 2×256", "medium", (2, 256)),
    ("large 2×512", "large", (2, 512)),
    ("huge 3×1024 · wants a GPU", "huge", (3, 1024)),
)
SIZE_SHAPES = {key: shape for _, key, shape in SIZES}
TOKENIZERS = (("characters", "char"), ("subwords: BPE", "bpe"), ("subwords: unigram", "unigram"))
POLL_S = 0.1


def build_train_args(corpus: str, tokenizer: str, size: str, time: str, steps: str, extra: str) -> list[str]:
    """The ``charnn train`` arguments for the form's values; raises ValueError with a message."""
    from charnn.config import parse_duration
    from charnn.corpora.catalog import NAMES, is_builtin

    corpus = corpus.strip()
    if not corpus:
        raise ValueError("Choose a corpus: the path of a UTF-8 text file (ctrl+o browses).")
    path = Path(corpus).expanduser()
    if not path.exists() and not is_builtin(corpus):  # a built-in name: the trainer finds or builds it
        raise ValueError(f"{path} does not exist and is not a built-in corpus ({', '.join(NAMES)}).")
    if path.is_dir():
        raise ValueError(f"{path} is a directory; choose a text file inside it.")
    args = [str(path) if path.exists() else corpus, "--tokenizer", tokenizer]
    if SIZE_SHAPES[size] is not None:
        layers, hidden = SIZE_SHAPES[size]
        args += ["--layers", str(layers), "--hidden", str(hidden)]
    if time.strip():
        try:
            parse_duration(time)
        except ValueError:
            raise ValueError(f"Time budget {time.strip()!r} is not a duration (try 90s, 5m or 1h).") from None
        args += ["--time", time.strip()]
    if steps.strip():
        if not steps.strip().isdigit() or int(steps) <= 0:
            raise ValueError(f"Steps {steps.strip()!r} must be a whole number above 0.")
        args += ["--steps", steps.strip()]
    try:
        args += shlex.split(extra)
    except ValueError as e:
        raise ValueError(f"Extra flags: {e}.") from None
    return args


class TrainForm(VerticalScroll):
    """The settings of a new run, with sensible defaults; Enter in any field starts it."""

    def compose(self) -> ComposeResult:
        yield Static("[b]New training run[/b]  [dim]· fill in a corpus, press Enter[/dim]", id="form-title")
        with Horizontal(classes="form-row"):
            yield Label("Corpus", classes="form-label")
            yield Input(placeholder="path to a UTF-8 text file", id="corpus", compact=True)
            yield Button("Browse ^o", id="browse", compact=True)
        with Horizontal(classes="form-row"):
            yield Label("Tokens", classes="form-label")
            yield Select([(label, key) for label, key in TOKENIZERS], value="char", allow_blank=False,
                         id="tokenizer", compact=True)
        with Horizontal(classes="form-row"):
            yield Label("Model size", classes="form-label")
            yield Select([(label, key) for label, key, _ in SIZES], value="auto", allow_blank=False,
                         id="size", compact=True)
        with Horizontal(classes="form-row"):
            yield Label("Train for", classes="form-label")
            yield Input("5m", placeholder="time: 90s, 5m, 1h", id="time", compact=True)
            yield Label("or steps", classes="form-label-short")
            yield Input("", placeholder="e.g. 2000", id="steps", compact=True, type="integer")
        with Horizontal(classes="form-row"):
            yield Label("Extra flags", classes="form-label")
            yield Input(placeholder="e.g. --dropout 0.2 --lr 1e-3 (charnn train --help)", id="extra",
                        compact=True)
        with Horizontal(classes="form-row form-buttons"):
            yield Button("Start training ⏎", id="start", variant="primary", compact=True)
        yield Static("", id="form-hint")

    def values(self) -> dict[str, str]:
        def val(widget_id: str) -> str:
            return str(self.query_one(f"#{widget_id}").value)  # type: ignore[attr-defined]

        return {k: val(k) for k in ("corpus", "tokenizer", "size", "time", "steps", "extra")}


class TrainScreen(Screen):
    """The form, then the dashboard: loss chart, numbers, and the sample log."""

    BINDINGS = [
        Binding("ctrl+s", "start", "Start training"),
        Binding("space", "toggle_pause", "Pause/Resume"),
        Binding("s", "stop", "Stop & save"),
        Binding("n", "new_run", "New run"),
        Binding("ctrl+o", "browse", "Browse"),
        Binding("escape", "show_dashboard", "Back to run", show=False),
    ]

    def __init__(self):
        super().__init__()
        self.state = RunState()
        self.process: TrainingProcess | None = None
        self.quit_when_done = False
        self._replaying = False

    # -- layout -----------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield ModeBar("train")
        with ContentSwitcher(initial="train-form", id="train-switcher"):
            yield TrainForm(id="train-form")
            with Vertical(id="dashboard"):
                with Horizontal(id="dashboard-top"):
                    yield LossChart(id="loss-chart")
                    yield RunStats(id="run-stats")
                yield SampleLog(id="sample-log")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.app.train_screen = self  # type: ignore[attr-defined]
        self.query_one("#dashboard-top").border_title = "loss"
        self.query_one("#sample-log").border_title = "samples · newest first"
        self._hint_bundled()
        if not self.app.initial_train_args and not self.app.attach_run:  # type: ignore[attr-defined]
            self.query_one("#corpus", Input).focus()

    def _hint_bundled(self) -> None:
        hint = self.query_one("#form-hint", Static)
        lines = [
            "[dim]Training runs in its own process: meanwhile the other screens (F2 Generate…) stay usable, "
            "and quitting asks whether to stop the run or keep it training in the background.[/dim]",
        ]
        bundled = getattr(self.app, "bundled", [])
        offers = []
        for kind, key, screen in (("lm", "F2", "Generate"), ("chat", "F3", "Chat")):
            names = [p.stem for p in bundled if (p.stem.endswith(f"-{kind}") or p.stem.startswith(f"{kind}-"))]
            if names:
                offers.append(f"{key} {screen} ({names[0]})")
        if offers:
            lines.insert(0, "Built-in models are ready to try without training: " + ", ".join(offers) + ".")
        hint.update("\n".join(lines))

    @property
    def showing_form(self) -> bool:
        return self.query_one(ContentSwitcher).current == "train-form"

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        proc = self.process
        controllable = proc is not None and self.state.active and proc.controllable
        if action == "toggle_pause":
            return controllable and not self.showing_form and not (proc and proc.stopping)
        if action == "stop":
            return controllable and not self.showing_form and not (proc and proc.stopping)
        if action == "new_run":
            return not self.showing_form and not self.state.active
        if action in ("browse", "start"):
            return self.showing_form
        if action == "show_dashboard":
            return self.showing_form and self.state.status != "idle"
        return True

    def _binding_key(self) -> tuple:
        proc = self.process
        return (self.state.status, self.state.active, self.showing_form,
                proc is not None and proc.controllable, proc is not None and proc.stopping)

    def _refresh(self) -> None:
        # rebuilding the footer on every event (~4/s) leaked its old key widgets
        # (benchmarks/soak.py: +830 MiB/h); rebuild only when what it shows can change
        key = self._binding_key()
        if key != getattr(self, "_last_binding_key", None):
            self._last_binding_key = key
            self.refresh_bindings()
        self.query_one(RunStats).show(self.state)
        self.app.training_status = self.status_line()  # type: ignore[attr-defined]

    def status_line(self) -> str:
        s = self.state
        if s.status == "idle":
            return ""
        parts = [f"● {s.status_text}", f"step {s.step:,}"]
        if s.status == "done" and (figure := score(s.held_out_bpc, s.best_val_bpc)):
            parts.append(figure)  # what the run leaves, as the model lists show it
        elif s.train_bpc is not None:
            parts.append(f"{s.train_bpc:.2f} bpc")
        if s.tokens_per_s and s.active:
            parts.append(f"{fmt_count(s.tokens_per_s)} tok/s")
        return " · ".join(parts)

    # -- actions ----------------------------------------------------------------------
    @on(Button.Pressed, "#start")
    @on(Input.Submitted, "#train-form Input")
    def _start_pressed(self) -> None:
        self.start_from_form()

    @on(Button.Pressed, "#browse")
    def action_browse(self) -> None:
        def picked(path: str | None) -> None:
            if path:
                self.query_one("#corpus", Input).value = path
                self.query_one("#start", Button).focus()

        self.app.push_screen(FilePicker(self.query_one("#corpus", Input).value), picked)

    def action_start(self) -> None:
        self.start_from_form()

    def start_from_form(self) -> None:
        if self.state.active:
            self.notify("A run is still training; stop it first (s).", severity="warning")
            return
        try:
            args = build_train_args(**self.query_one(TrainForm).values())
        except ValueError as e:
            self.notify(str(e), title="Cannot start", severity="error")
            return
        self.start_training(args)

    def start_training(self, args: list[str]) -> None:
        """Start ``charnn train ARGS`` in a child process and follow it."""
        try:
            proc = TrainingProcess.start(args)
        except OSError as e:
            self.notify(f"Could not start the trainer: {e}", severity="error")
            return
        self._begin(proc, RunState(status="starting"))

    def attach(self, proc: TrainingProcess) -> None:
        """Follow a run started elsewhere (``charnn tui --run NAME``)."""
        self._replaying = True
        self._begin(proc, RunState(status="training", following=not proc.controllable))

    def show_events(self, events: list[Event]) -> None:
        """Draw a run from its events alone, with no process behind it (tests, demos)."""
        self.process = None
        self.state = RunState(status="starting")
        self.query_one(LossChart).clear()
        self.query_one(SampleLog).clear()
        self.query_one(ContentSwitcher).current = "dashboard"
        for event in events:
            self.apply_event(event)

    def _begin(self, proc: TrainingProcess, state: RunState) -> None:
        self.process = proc
        self.state = state
        self.query_one(LossChart).clear()
        self.query_one(SampleLog).clear()
        self.query_one(ContentSwitcher).current = "dashboard"
        self.query_one("#dashboard-top").border_subtitle = ""
        self.set_focus(None)
        self._refresh()
        self.follow(proc)

    def action_toggle_pause(self) -> None:
        proc = self.process
        if proc is None:
            return
        if proc.paused:
            if proc.resume():
                self.state.status = "training"
        elif proc.pause():
            self.state.status = "paused"
        self._refresh()

    def action_stop(self) -> None:
        if self.process and self.process.stop():
            self.state.status = "stopping"
            self.notify("Stopping after this step; the trainer evaluates and saves a resumable checkpoint.")
            self._refresh()

    def action_new_run(self) -> None:
        self.query_one(ContentSwitcher).current = "train-form"
        self.query_one("#corpus", Input).focus()
        self.refresh_bindings()

    def action_show_dashboard(self) -> None:
        self.query_one(ContentSwitcher).current = "dashboard"
        self.set_focus(None)
        self.refresh_bindings()

    # -- events -----------------------------------------------------------------------
    @work(exclusive=True, group="follow")
    async def follow(self, proc: TrainingProcess) -> None:
        """Read the run's events as they arrive until it is done (or its process is gone)."""
        while True:
            events = proc.events.read_new()
            for event in events:
                self._apply_safely(event)
            if proc is not self.process:
                return
            if proc.finished:
                break
            if events:
                self._replaying = False
            if proc.pid is not None and not proc.alive():
                for event in proc.events.read_new():
                    self._apply_safely(event)
                if not proc.finished:
                    self._process_ended(proc)
                break
            await asyncio.sleep(POLL_S)
        proc.cleanup()
        if self.quit_when_done:
            self.app.leave()  # type: ignore[attr-defined]

    def stop_following(self) -> None:
        self.workers.cancel_group(self, "follow")

    def _apply_safely(self, event: Event) -> None:
        """One odd event must not take the app (or the run) down with it."""
        try:
            self.apply_event(event)
        except Exception as e:  # noqa: BLE001 - shown, never a crash
            if self.is_attached:
                self.notify(f"Could not show a {type(event).__name__} event: {e}", severity="warning")

    def _process_ended(self, proc: TrainingProcess) -> None:
        reason = proc.stderr_tail() or f"the trainer exited with code {proc.exit_code()}"
        reason = reason.removeprefix("charnn: ")
        self.state.status = "failed"
        self.state.done_reason = "error"
        proc.note_finished()
        title = "Training could not start" if not self.state.run_name else "Training ended"
        self.notify(reason, title=title, severity="error", timeout=15)
        if not self.state.run_name:
            self.query_one(ContentSwitcher).current = "train-form"
        self._refresh()

    def apply_event(self, e: Event) -> None:
        proc = self.process
        was_paused_or_stopping = self.state.status in ("paused", "stopping")
        self.state.apply(e)
        if was_paused_or_stopping and isinstance(e, Step | Eval | Start) and proc is not None:
            self.state.status = "paused" if proc.paused else "stopping" if proc.stopping else self.state.status
        chart = self.query_one(LossChart)
        if isinstance(e, Start):
            if proc is not None:
                proc.note_started(e.run_dir)
            self.query_one("#dashboard-top").border_title = f"loss · {e.run_name}"
            if e.resumed_step and not self._replaying:
                self._load_history(Path(e.run_dir), e.resumed_step)
        elif isinstance(e, Step):
            chart.add_train(e.step, e.bpc)
        elif isinstance(e, Eval):
            if not e.final:
                chart.add_val(e.step, e.val_bpc)
        elif isinstance(e, Sample):
            self.query_one(SampleLog).add(e.step, e.text, e.val_bpc)
        elif isinstance(e, Notice):
            if not self._replaying:
                self.notify(e.message, title="Training", severity="warning", timeout=10)
        elif isinstance(e, Checkpoint):
            self.query_one("#dashboard-top").border_subtitle = f"saved step {e.step:,} ({e.kind})"
        elif isinstance(e, Done):
            if proc is not None:
                proc.note_finished()
            if not self._replaying:
                self._announce_done(e)
        elif isinstance(e, Error):
            if proc is not None:
                proc.note_finished()
            started = bool(self.state.run_name)
            self.notify(e.message, title="Training failed" if started else "Training could not start",
                        severity="error", timeout=15)
            if not started:
                self.query_one(ContentSwitcher).current = "train-form"
        self._refresh()

    def _announce_done(self, e: Done) -> None:
        figure = score(e.held_out_bpc, e.best_val_bpc)
        best = f"{figure}; " if figure else ""
        if e.reason == "failed":
            self.notify(f"Training failed at step {e.step:,}; the last good checkpoint is in {e.run_dir}.",
                        title="Training failed", severity="error", timeout=15)
            return
        what = {"budget": "Finished", "stopped": "Stopped and saved", "early-stop": "Stopped early"}.get(
            e.reason, e.reason)
        self.notify(f"{what} at step {e.step:,}; {best}F2 generates with it, n starts a new run.",
                    title="Training", timeout=10)

    def _load_history(self, run_dir: Path, upto: int) -> None:
        """A resumed run: draw the curve it had before, from its events.jsonl."""
        from charnn.tui.training_process import EventFile

        history = EventFile(run_dir / "events.jsonl")
        chart = self.query_one(LossChart)
        try:
            for e in history.read_new():
                if isinstance(e, Step) and e.step <= upto:
                    chart.add_train(e.step, e.bpc)
                elif isinstance(e, Eval) and e.step <= upto and not e.final:
                    chart.add_val(e.step, e.val_bpc)
        finally:
            history.close()

    # -- quitting ---------------------------------------------------------------------
    @property
    def needs_quit_question(self) -> bool:
        return self.state.active and self.process is not None and self.process.controllable

    def quit_stop(self) -> None:
        """Stop the run, wait for its checkpoint, then leave."""
        self.quit_when_done = True
        if not (self.process and (self.process.stopping or self.process.stop())):
            self.app.leave()  # type: ignore[attr-defined]
            return
        self.state.status = "stopping"
        self._refresh()
        self.notify("Stopping and saving; the app closes when the checkpoint is written "
                    "(ctrl+q again leaves it saving in the background).", timeout=30)
