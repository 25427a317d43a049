"""The charnn Textual app: four screens (Train, Generate, Chat, Models) as app modes.

Each screen keeps its state while you switch between them with F1-F4, so a run
keeps drawing its loss curve while you generate from an earlier checkpoint.
The training run itself lives in a child process owned by the Train screen.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable
from functools import partial
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen

from charnn.tui.screens.chat import ChatScreen
from charnn.tui.screens.dialogs import QuitDialog
from charnn.tui.screens.generate import GenerateScreen
from charnn.tui.screens.models import ModelsScreen
from charnn.tui.screens.train import TrainScreen
from charnn.tui.training_process import TrainingProcess

SCREENS_GROUP = Binding.Group("Screens", compact=True)


class CharnnApp(App[int]):
    """Train a model, watch it learn, then generate and chat with it."""

    TITLE = "charnn"
    CSS_PATH = "charnn.tcss"
    MODES = {"train": TrainScreen, "generate": GenerateScreen, "chat": ChatScreen, "models": ModelsScreen}
    DEFAULT_MODE = "train"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]  # screens get the class; the CSS adapts
    BINDINGS = [
        Binding("f1", "switch_mode('train')", "Train", show=False),
        Binding("f2", "switch_mode('generate')", "Generate", show=False),
        Binding("f3", "switch_mode('chat')", "Chat", show=False),
        Binding("f4", "switch_mode('models')", "Models", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("ctrl+t", "toggle_dark", "Light/dark", show=False),
    ]

    training_status: reactive[str] = reactive("")

    def __init__(self, train_args: list[str] | None = None, attach_run: str | None = None,
                 attach_process: TrainingProcess | None = None):
        super().__init__()
        self.initial_train_args = train_args
        self.attach_run = attach_run
        self.attach_process = attach_process
        self.train_screen: TrainScreen | None = None
        self.bundled: list[Path] = []
        self._quit_asked = False
        self.farewell: str | None = None  # printed by run_tui after the screen is restored

    def freeze_heap(self) -> None:
        """Move everything alive now (textual, torch, a loaded model) out of the collector's sight.

        Full garbage collections over that long-lived heap paused the UI for 100-250 ms
        while text streamed in; after this they only scan objects made since.
        """
        gc.freeze()

    def on_mount(self) -> None:
        from charnn.runtime.runs import bundled_models, list_runs

        self.call_after_refresh(self.freeze_heap)

        self.bundled = bundled_models()
        if self.train_screen is not None:
            self.train_screen._hint_bundled()
            if self.initial_train_args:
                self.train_screen.start_training(self.initial_train_args)
            elif self.attach_process is not None:
                self.train_screen.attach(self.attach_process)
        if self.bundled and not list_runs() and not self.initial_train_args and self.attach_process is None:
            offers = []
            for kind, key, verb in (("lm", "F2", "generates with"), ("chat", "F3", "chats with")):
                found = bundled_models(kind)
                if found:
                    offers.append(f"{key} {verb} {found[0].stem}")
            if offers:
                self.notify("Built-in models are ready to try: " + "; ".join(offers) + ". Or train your own here.",
                            title="Welcome", timeout=12)

    # -- navigation -------------------------------------------------------------------
    def open_model(self, mode: str, path: str) -> None:
        """Open a checkpoint in Generate or Chat (from the Models screen)."""
        self.call_later(self._open_model, mode, path)

    async def _open_model(self, mode: str, path: str) -> None:
        await self.switch_mode(mode)
        self.screen.open_model(path)  # type: ignore[attr-defined]

    def resume_training(self, run_dir: str, total_steps: int) -> None:
        """Continue a run on the Train screen (from the Models screen)."""
        self.call_later(self._resume_training, run_dir, total_steps)

    async def _resume_training(self, run_dir: str, total_steps: int) -> None:
        await self.switch_mode("train")
        if self.train_screen is not None:
            if self.train_screen.state.active:
                self.notify("A run is still training; stop it first (s).", severity="warning")
                return
            self.train_screen.start_training(["--resume", run_dir, "--steps", str(total_steps)])

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every key of the current screen is in the palette too, under its footer name
        (widget keys such as an input's cursor movements are left out)."""
        yield from super().get_system_commands(screen)
        for name, key in (("Train screen", "train"), ("Generate screen", "generate"),
                          ("Chat screen", "chat"), ("Models screen", "models")):
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

    # -- quitting ---------------------------------------------------------------------
    def leave(self, background: bool = False) -> None:
        """Close the app; a run still training is left to go on by itself."""
        train = self.train_screen
        self.farewell = self.exit_message(background=background)
        if train is not None:
            train.stop_following()
            if train.process is not None and background:
                train.process.detach()
        self.exit(0)

    async def action_quit(self) -> None:
        train = self.train_screen
        if train is None or not train.needs_quit_question:
            self.leave()
            return
        if train.quit_when_done or self._quit_asked:
            self.leave(background=True)  # asked twice: the trainer finishes saving on its own
            return

        def answer(choice: str | None) -> None:
            if choice == "stop":
                train.quit_stop()
            elif choice == "background":
                self.leave(background=True)
            self._quit_asked = False

        self._quit_asked = True
        self.push_screen(QuitDialog(train.state.run_name), answer)

    def exit_message(self, background: bool = False) -> str | None:
        """What to print when the app closes: where the run is, and how to follow it."""
        train = self.train_screen
        if train is None or train.process is None:
            return None
        state, proc = train.state, train.process
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
