"""The charnn Textual app: five screens (Train, Generate, Chat, Models, Inspect) as app modes.

Each screen keeps its state while you switch between them with F1-F5, so a run
keeps drawing its loss curve while you generate from an earlier checkpoint.
The app owns the training run (its child process and its state): the screens
read it, ask for changes with messages, and the app calls their public methods.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from functools import partial
from pathlib import Path

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen

from charnn.training.events import Done, Error, Eval, Event, Notice, Start, Step
from charnn.tui.inference import freeze_heap
from charnn.tui.run_state import RunState, Training
from charnn.tui.screens.chat import ChatScreen
from charnn.tui.screens.dialogs import QuitDialog
from charnn.tui.screens.generate import GenerateScreen
from charnn.tui.screens.inspect import InspectScreen
from charnn.tui.screens.models import ModelsScreen
from charnn.tui.screens.train import TrainScreen
from charnn.tui.training_process import TrainingProcess

SCREENS_GROUP = Binding.Group("Screens", compact=True)
POLL_S = 0.1
DONE_TITLES = {"budget": "Finished", "stopped": "Stopped and saved", "early-stop": "Stopped early"}


class CharnnApp(App[int]):
    """Train a model, watch it learn, then generate and chat with it."""

    TITLE = "charnn"
    CSS_PATH = "charnn.tcss"
    MODES = {"train": "train", "generate": "generate", "chat": "chat", "models": "models", "inspect": "inspect"}
    DEFAULT_MODE = "train"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]  # screens get the class; the CSS adapts
    BINDINGS = [
        Binding("f1", "switch_mode('train')", "Train", show=False),
        Binding("f2", "switch_mode('generate')", "Generate", show=False),
        Binding("f3", "switch_mode('chat')", "Chat", show=False),
        Binding("f4", "switch_mode('models')", "Models", show=False),
        Binding("f5", "switch_mode('inspect')", "Inspect", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("ctrl+t", "toggle_dark", "Light/dark", show=False),
    ]

    training_status: reactive[str] = reactive("")

    def __init__(self, train_args: list[str] | None = None, attach_process: TrainingProcess | None = None,
                 open_model: tuple[str, str] | None = None):
        """``train_args`` starts a run at once, ``attach_process`` follows one, ``open_model`` (kind,
        checkpoint path) opens a model in Generate or Chat."""
        from charnn.runtime.runs import bundled_models

        super().__init__()
        self.initial_train_args = train_args
        self.attach_process = attach_process
        self.initial_model = open_model
        self.training = Training()
        self.quit_when_done = False
        self._replaying = False  # re-attached: the events on disk are history, not news
        self._quit_asked = False
        self.farewell: str | None = None  # printed by run_tui after the screen is restored
        self.bundled: list[Path] = bundled_models()
        self.train_screen = TrainScreen(self.training, self.bundled,
                                        focus_form=not (train_args or attach_process or open_model))
        self.generate_screen = GenerateScreen()
        self.chat_screen = ChatScreen()
        self.models_screen = ModelsScreen(self.training)
        self.inspect_screen = InspectScreen()
        for name, screen in (("train", self.train_screen), ("generate", self.generate_screen),
                             ("chat", self.chat_screen), ("models", self.models_screen),
                             ("inspect", self.inspect_screen)):
            self.install_screen(screen, name)

    def on_mount(self) -> None:
        from charnn.runtime.runs import bundled_models, list_runs

        self.call_after_refresh(freeze_heap)
        if self.initial_train_args:
            self.start_training(self.initial_train_args)
        elif self.attach_process is not None:
            self.attach(self.attach_process)
        elif self.initial_model is not None:
            self.open_model(*self.initial_model)
        if self.bundled and not list_runs() and not (self.initial_train_args or self.attach_process
                                                     or self.initial_model):
            offers = []
            for kind, key, verb in (("lm", "F2", "generates with"), ("chat", "F3", "chats with")):
                found = bundled_models(kind)
                if found:
                    offers.append(f"{key} {verb} {found[0].stem}")
            if offers:
                self.notify("Built-in models are ready to try: " + "; ".join(offers) + ". Or train your own here.",
                            title="Welcome", timeout=12)

    # -- navigation -------------------------------------------------------------------
    def open_model(self, kind: str, path: str) -> None:
        """Open a checkpoint in Generate (``kind`` "lm") or Chat ("chat")."""
        self.call_later(self._open_model, kind, path)

    async def _open_model(self, kind: str, path: str) -> None:
        await self.switch_mode("chat" if kind == "chat" else "generate")
        (self.chat_screen if kind == "chat" else self.generate_screen).open_model(path)

    @on(ModelsScreen.OpenModel)
    def _open_from_models(self, message: ModelsScreen.OpenModel) -> None:
        self.open_model(message.kind, message.path)

    @on(ModelsScreen.ResumeRun)
    async def _resume_from_models(self, message: ModelsScreen.ResumeRun) -> None:
        await self.switch_mode("train")
        if self.training.state.active:
            self.notify("A run is still training; stop it first (s).", severity="warning")
            return
        self.start_training(["--resume", message.run_dir, "--steps", str(message.total_steps)])

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every key of the current screen is in the palette too, under its footer name
        (widget keys such as an input's cursor movements are left out)."""
        yield from super().get_system_commands(screen)
        for name, key in (("Train screen", "train"), ("Generate screen", "generate"),
                          ("Chat screen", "chat"), ("Models screen", "models"), ("Inspect screen", "inspect")):
            yield SystemCommand(name, f"Switch to the {name}", partial(self.switch_mode, key))
        yield SystemCommand("Light/dark", "Switch between the light and dark theme (ctrl+t)", self.action_toggle_dark)
        seen = set()
        for active in screen.active_bindings.values():
            binding = active.binding
            if active.node is not screen or not binding.description or binding.action in seen or not active.enabled:
                continue
            seen.add(binding.action)
            label = binding.description
            if binding.group is not None and binding.description == binding.group.description:
                label = f"{binding.description} {'down' if '(-' in binding.action else 'up'}"
            yield SystemCommand(label, f"key: {self.get_key_display(binding)}",
                                partial(active.node.run_action, binding.action))

    # -- the training run -------------------------------------------------------------
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
        self.training.process, self.training.state = None, RunState(status="starting")
        self.train_screen.begin_run()
        for event in events:
            self.apply_event(event)

    def _begin(self, proc: TrainingProcess, state: RunState) -> None:
        self.training.process, self.training.state = proc, state
        self.train_screen.begin_run()
        self._show_state()
        self.follow(proc)

    def _show_state(self) -> None:
        self.train_screen.show_state()
        self.training_status = self.training.state.status_line()

    @on(TrainScreen.StartRun)
    def _start_from_form(self, message: TrainScreen.StartRun) -> None:
        self.start_training(message.args)

    @on(TrainScreen.TogglePause)
    def _toggle_pause(self) -> None:
        proc, state = self.training.process, self.training.state
        if proc is None:
            return
        if proc.paused:
            if proc.resume():
                state.status = "training"
        elif proc.pause():
            state.status = "paused"
        self._show_state()

    @on(TrainScreen.StopRun)
    def _stop(self) -> None:
        if self.training.process and self.training.process.stop():
            self.training.state.status = "stopping"
            self.notify("Stopping after this step; the trainer evaluates and saves a resumable checkpoint.")
            self._show_state()

    @work(exclusive=True, group="follow")
    async def follow(self, proc: TrainingProcess) -> None:
        """Read the run's events as they arrive until it is done (or its process is gone)."""
        while True:
            events = proc.events.read_new()
            for event in events:
                self._apply_safely(event)
            if proc is not self.training.process:
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
            self.leave()

    def _apply_safely(self, event: Event) -> None:
        """One odd event must not take the app (or the run) down with it."""
        try:
            self.apply_event(event)
        except Exception as e:  # noqa: BLE001 - shown, never a crash
            self.notify(f"Could not show a {type(event).__name__} event: {e}", severity="warning")

    def _process_ended(self, proc: TrainingProcess) -> None:
        state = self.training.state
        reason = proc.stderr_tail() or f"the trainer exited with code {proc.exit_code()}"
        state.status, state.done_reason = "failed", "error"
        proc.note_finished()
        title = "Training could not start" if not state.run_name else "Training ended"
        self.notify(reason.removeprefix("charnn: "), title=title, severity="error", timeout=15)
        if not state.run_name:
            self.train_screen.show_form(focus=False)
        self._show_state()

    def apply_event(self, e: Event) -> None:
        """Fold one event into the run's state, tell the user what matters, and draw it."""
        proc, state = self.training.process, self.training.state
        was_paused_or_stopping = state.status in ("paused", "stopping")
        state.apply(e)
        if was_paused_or_stopping and isinstance(e, Step | Eval | Start) and proc is not None:
            state.status = "paused" if proc.paused else "stopping" if proc.stopping else state.status
        if isinstance(e, Start) and proc is not None:
            proc.note_started(e.run_dir)
        elif isinstance(e, Notice) and not self._replaying:
            self.notify(e.message, title="Training", severity="warning", timeout=10)
        elif isinstance(e, Done | Error) and proc is not None:
            proc.note_finished()
        if isinstance(e, Done) and not self._replaying:
            self._announce_done(e)
        elif isinstance(e, Error):
            self.notify(e.message, title="Training failed" if state.run_name else "Training could not start",
                        severity="error", timeout=15)
        self.train_screen.show_event(e, self._replaying)
        self.training_status = state.status_line()

    def _announce_done(self, e: Done) -> None:
        from charnn.report import score

        if e.reason == "failed":
            self.notify(f"Training failed at step {e.step:,}; the last good checkpoint is in {e.run_dir}.",
                        title="Training failed", severity="error", timeout=15)
            return
        figure = score(e.held_out_bpc, e.best_val_bpc)
        best = f"{figure}; " if figure else ""
        self.notify(f"{DONE_TITLES.get(e.reason, e.reason)} at step {e.step:,}; {best}F2 generates with it, "
                    f"n starts a new run.", title="Training", timeout=10)

    # -- quitting ---------------------------------------------------------------------
    @property
    def needs_quit_question(self) -> bool:
        return self.training.controllable

    def leave(self, background: bool = False) -> None:
        """Close the app; a run still training is left to go on by itself."""
        self.farewell = self.exit_message(background=background)
        self.workers.cancel_group(self, "follow")
        if self.training.process is not None and background:
            self.training.process.detach()
        self.exit(0)

    def quit_stop(self) -> None:
        """Stop the run, wait for its checkpoint, then leave."""
        self.quit_when_done = True
        proc = self.training.process
        if not (proc and (proc.stopping or proc.stop())):
            self.leave()
            return
        self.training.state.status = "stopping"
        self._show_state()
        self.notify("Stopping and saving; the app closes when the checkpoint is written "
                    "(ctrl+q again leaves it saving in the background).", timeout=30)

    async def action_quit(self) -> None:
        if not self.needs_quit_question:
            self.leave()
            return
        if self.quit_when_done or self._quit_asked:
            self.leave(background=True)  # asked twice: the trainer finishes saving on its own
            return

        def answer(choice: str | None) -> None:
            if choice == "stop":
                self.quit_stop()
            elif choice == "background":
                self.leave(background=True)
            self._quit_asked = False

        self._quit_asked = True
        self.push_screen(QuitDialog(self.training.state.run_name), answer)

    def exit_message(self, background: bool = False) -> str | None:
        """What to print when the app closes: where the run is, and how to follow it."""
        state, proc = self.training.state, self.training.process
        if proc is None:
            return None
        if background or (state.active and proc.alive()):
            lines = [f"charnn: training continues in the background (pid {proc.pid})."]
            if state.run_dir:
                lines += [
                    f"  run:       {state.run_dir}",
                    f"  re-attach: charnn tui --run {state.run_name}",
                    f"  follow:    tail -f {Path(state.run_dir) / 'events.jsonl'}",
                    f"  stop:      kill -INT {proc.pid}   (it saves a checkpoint first)",
                ]
            else:
                lines.append(f"  its events go to {proc.events_path}")
            return "\n".join(lines)
        if state.run_dir and state.status in ("done", "failed"):
            return f"charnn: run {state.run_name} is saved in {state.run_dir}."
        return None
