"""Train: choose a corpus and a size, start, then watch the loss fall and the samples improve.

The run trains in a child process that the app owns and follows; this screen
shows the app's ``Training`` and draws each event the app hands it, and asks
the app (by message) to start, pause or stop a run.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, ContentSwitcher, Footer, Input, Label, Select, Static

from charnn.training.events import Checkpoint, Error, Eval, Event, Sample, Start, Step
from charnn.tui.run_state import Training
from charnn.tui.screens.dialogs import FilePicker
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


NEW_MODEL = ""  # the "start from" choice of a model trained from scratch
NEW_MODEL_LABEL = "nothing (new model)"


def start_from_choices() -> list[tuple[str, str, str]]:
    """(label, --init-from value, mode) for each model a run can start from: built-in ones, then the user's runs."""
    from charnn.runtime.runs import list_models

    out = [(NEW_MODEL_LABEL, NEW_MODEL, "lm")]
    records = [r for r in list_models() if r.checkpoint() is not None]
    for r in sorted(records, key=lambda r: not r.bundled):  # built-in first; runs stay newest first
        what = "chat model" if r.mode == "chat" else "language model"
        if r.bundled:
            out.append((f"{r.name} · built-in {what}", r.name, r.mode))
        else:
            out.append((f"{r.name} · {what} {r.size} {r.tokenizer or ''}".rstrip(), str(r.path), r.mode))
    return out


def build_train_args(corpus: str, tokenizer: str, size: str, time: str, steps: str, extra: str,
                     start_from: str = NEW_MODEL, start_mode: str = "lm") -> list[str]:
    """The ``charnn train`` arguments for the form's values; raises ValueError with a message.
    With ``start_from`` (a model to fine-tune) its own tokenizer and size are kept."""
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
    args = [str(path) if path.exists() else corpus]
    if start_from:
        args += ["--init-from", start_from]
        if start_mode == "chat" and "--mode" not in extra:
            args += ["--mode", "chat"]
    else:
        args += ["--tokenizer", tokenizer]
    if SIZE_SHAPES[size] is not None and not start_from:
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
            yield Label("Start from", classes="form-label")
            yield Select([(NEW_MODEL_LABEL, NEW_MODEL)], value=NEW_MODEL, allow_blank=False, id="start-from",
                         compact=True)
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

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.start_modes = {NEW_MODEL: "lm"}  # --init-from value -> the mode of that model

    def on_mount(self) -> None:
        self.load_start_choices()

    def load_start_choices(self) -> None:
        """The models a run can start from, as they are on disk now; the choice kept if it still exists."""
        select = self.query_one("#start-from", Select)
        keep = select.value
        choices = start_from_choices()
        self.start_modes = {value: mode for _, value, mode in choices}
        select.set_options([(label, value) for label, value, _ in choices])
        if keep in self.start_modes:
            select.value = keep

    @on(Select.Changed, "#start-from")
    def _start_from_changed(self, event: Select.Changed) -> None:
        # a model started from keeps its own tokens and size
        for key in ("tokenizer", "size"):
            self.query_one(f"#{key}", Select).disabled = event.value != NEW_MODEL

    def values(self) -> dict[str, str]:
        fields = {k: self.query_one(f"#{k}", Input).value for k in ("corpus", "time", "steps", "extra")}
        start = str(self.query_one("#start-from", Select).value)
        return {**fields, **{k: str(self.query_one(f"#{k}", Select).value) for k in ("tokenizer", "size")},
                "start_from": start, "start_mode": self.start_modes.get(start, "lm")}


class TrainScreen(Screen):
    """The form, then the dashboard: loss chart, numbers, and the sample log."""

    BINDINGS = [
        Binding("ctrl+s", "start", "Start training"),
        Binding("space", "toggle_pause", "Pause/Resume"),
        Binding("s", "stop", "Stop & save"),
        Binding("n", "new_run", "New run"),
        # one key, two footer labels: it says what pressing it shows
        Binding("t", "sample_order('timelapse')", "Time-lapse"),
        Binding("t", "sample_order('newest')", "Newest first"),
        Binding("ctrl+o", "browse", "Browse"),
        Binding("escape", "show_dashboard", "Back to run", show=False),
    ]

    class StartRun(Message):
        """Start ``charnn train ARGS`` (from the form)."""

        def __init__(self, args: list[str]):
            super().__init__()
            self.args = args

    class TogglePause(Message):
        """Pause the run, or resume it."""

    class StopRun(Message):
        """Stop the run after this step; the trainer saves a resumable checkpoint."""

    def __init__(self, training: Training, bundled: list[Path] | None = None, focus_form: bool = True):
        super().__init__()
        self.training = training
        self.bundled = bundled or []
        self.focus_form = focus_form
        self._binding_key: tuple | None = None

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
        self.query_one("#dashboard-top").border_title = "loss"
        self._hint_bundled()
        if self.focus_form:
            self.query_one("#corpus", Input).focus()

    def _hint_bundled(self) -> None:
        lines = [
            "[dim]Training runs in its own process: meanwhile the other screens (F2 Generate…) stay usable, "
            "and quitting asks whether to stop the run or keep it training in the background.[/dim]",
        ]
        offers = []
        for kind, key, screen in (("lm", "F2", "Generate"), ("chat", "F3", "Chat")):
            names = [p.stem for p in self.bundled if (p.stem.endswith(f"-{kind}") or p.stem.startswith(f"{kind}-"))]
            if names:
                offers.append(f"{key} {screen} ({names[0]})")
        if offers:
            lines.insert(0, "Built-in models are ready to try without training: " + ", ".join(offers)
                         + "; or fine-tune one on your own text (Start from).")
        self.query_one("#form-hint", Static).update("\n".join(lines))

    @property
    def showing_form(self) -> bool:
        return self.query_one(ContentSwitcher).current == "train-form"

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        proc, state = self.training.process, self.training.state
        if action in ("toggle_pause", "stop"):
            return self.training.controllable and not self.showing_form and not (proc and proc.stopping)
        if action == "new_run":
            return not self.showing_form and not state.active
        if action in ("browse", "start"):
            return self.showing_form
        if action == "show_dashboard":
            return self.showing_form and state.status != "idle"
        if action == "sample_order":
            return not self.showing_form and (parameters[0] == "timelapse") != self.query_one(SampleLog).timelapse
        return True

    def show_state(self) -> None:
        """Redraw the numbers, and the footer keys when what they offer has changed."""
        proc, state = self.training.process, self.training.state
        # rebuilding the footer on every event (~4/s) leaked its old key widgets
        # (benchmarks/soak.py: +830 MiB/h); rebuild only when what it shows can change
        key = (state.status, state.active, self.showing_form, proc is not None and proc.controllable,
               proc is not None and proc.stopping)
        if key != self._binding_key:
            self._binding_key = key
            self.refresh_bindings()
        self.query_one(RunStats).show(state)

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
        if self.training.state.active:
            self.notify("A run is still training; stop it first (s).", severity="warning")
            return
        try:
            args = build_train_args(**self.query_one(TrainForm).values())
        except ValueError as e:
            self.notify(str(e), title="Cannot start", severity="error")
            return
        self.post_message(self.StartRun(args))

    def action_toggle_pause(self) -> None:
        self.post_message(self.TogglePause())

    def action_stop(self) -> None:
        self.post_message(self.StopRun())

    def action_sample_order(self, order: str) -> None:
        """Show the samples newest first ("newest") or as the time-lapse of one text ("timelapse")."""
        log = self.query_one(SampleLog)
        if (order == "timelapse") != log.timelapse:
            log.flip()
        self.refresh_bindings()

    def action_new_run(self) -> None:
        self.show_form()

    def action_show_dashboard(self) -> None:
        self.query_one(ContentSwitcher).current = "dashboard"
        self.set_focus(None)
        self.refresh_bindings()

    def show_form(self, focus: bool = True) -> None:
        self.query_one(TrainForm).load_start_choices()  # runs may have finished since
        self.query_one(ContentSwitcher).current = "train-form"
        if focus:
            self.query_one("#corpus", Input).focus()
        self.refresh_bindings()

    # -- drawing the run ----------------------------------------------------------------
    def begin_run(self) -> None:
        """A new run (or one re-attached to): an empty dashboard."""
        self.query_one(LossChart).clear()
        self.query_one(SampleLog).clear()
        self.query_one(ContentSwitcher).current = "dashboard"
        self.query_one("#dashboard-top").border_subtitle = ""
        self.set_focus(None)
        self.show_state()

    def show_event(self, e: Event, replaying: bool = False) -> None:
        """Draw one event of the run (the app has already folded it into the state)."""
        chart = self.query_one(LossChart)
        if isinstance(e, Start):
            self.query_one("#dashboard-top").border_title = f"loss · {e.run_name}"
            if e.resumed_step and not replaying:
                self._load_history(Path(e.run_dir), e.resumed_step)
        elif isinstance(e, Step):
            chart.add_train(e.step, e.bpc)
        elif isinstance(e, Eval):
            if not e.final:
                chart.add_val(e.step, e.val_bpc)
        elif isinstance(e, Sample):
            self.query_one(SampleLog).add(e.step, e.text, e.val_bpc)
        elif isinstance(e, Checkpoint):
            self.query_one("#dashboard-top").border_subtitle = f"saved step {e.step:,} ({e.kind})"
        elif isinstance(e, Error) and not self.training.state.run_name:
            self.show_form(focus=False)  # it never started: back to the form to fix it
        self.show_state()

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
