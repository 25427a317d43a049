"""Small modal screens: quit while training, confirm, pick a file, pick a model, save text, options."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Label, OptionList, Static
from textual.widgets.option_list import Option


class Dialog(ModalScreen):
    """A centred box that Escape closes with ``None``."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]
    DEFAULT_CSS = """
    Dialog { align: center middle; }
    Dialog > Vertical {
        width: 72; max-width: 95%; height: auto; max-height: 90%;
        border: thick $primary 70%; background: $surface; padding: 0 1;
    }
    Dialog .dialog-title { text-style: bold; margin-bottom: 1; }
    Dialog .dialog-buttons { height: auto; margin-top: 1; align-horizontal: right; }
    Dialog .dialog-buttons Button { margin-left: 1; }
    Dialog .hint { color: $text-muted; }
    """

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class QuitDialog(Dialog):
    """Quitting while a run trains: stop and save it, or leave it training in the background."""

    BINDINGS = [
        Binding("s", "choose('stop')", "Stop and save"),
        Binding("b", "choose('background')", "Keep training"),
        Binding("escape", "dismiss_none", "Cancel"),
    ]

    def __init__(self, run_name: str):
        super().__init__()
        self.run_name = run_name

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Training is still running", classes="dialog-title")
            yield Static(f"Run [b]{self.run_name or 'starting'}[/b] has not finished. Stop it now (it saves a "
                         "checkpoint you can resume), or leave it training in the background?")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Stop and save (s)", id="stop", variant="warning")
                yield Button("Keep training (b)", id="background", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


class ConfirmDialog(Dialog):
    """A yes/no question; yes is never the default button."""

    BINDINGS = [Binding("y", "yes", "Yes"), Binding("n,escape", "dismiss_none", "No")]

    def __init__(self, title: str, message: str, yes: str = "Yes"):
        super().__init__()
        self.title_text, self.message, self.yes = title, message, yes

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="dialog-title")
            yield Static(self.message, markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="error")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(True if event.button.id == "yes" else None)

    def action_yes(self) -> None:
        self.dismiss(True)


class TextFileTree(DirectoryTree):
    """Directories and visible files only."""

    def filter_paths(self, paths):
        return [p for p in paths if not p.name.startswith(".")]


class FilePicker(Dialog):
    """Choose a file: type a path, or browse. Enter on a directory path opens it in the tree."""

    DEFAULT_CSS = """
    FilePicker > Vertical { height: 90%; }
    FilePicker TextFileTree { height: 1fr; border: round $primary 40%; }
    """

    def __init__(self, start: str = "", title: str = "Choose a text file to train on"):
        super().__init__()
        self.title_text = title
        p = Path(start).expanduser() if start else Path.cwd()
        self.root = p if p.is_dir() else p.parent if p.parent.is_dir() else Path.cwd()
        self.start = start

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="dialog-title")
            yield Input(self.start or str(self.root) + "/", id="picker-path",
                        placeholder="a path; Enter opens a directory or takes a file")
            yield TextFileTree(self.root, id="picker-tree")
            yield Static("Enter: take the file · ↑↓ move · Esc: cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#picker-tree").focus()

    @on(DirectoryTree.FileSelected)
    def _file(self, event: DirectoryTree.FileSelected) -> None:
        self.dismiss(str(event.path))

    @on(Input.Submitted, "#picker-path")
    def _typed(self, event: Input.Submitted) -> None:
        p = Path(event.value.strip()).expanduser()
        if p.is_dir():
            self.query_one(TextFileTree).path = p
        elif p.is_file():
            self.dismiss(str(p))
        else:
            self.notify(f"{p} does not exist.", severity="error")


class ModelPicker(Dialog):
    """Choose one of the models on disk (runs, then built-in models)."""

    DEFAULT_CSS = """
    ModelPicker OptionList { height: auto; max-height: 16; }
    """

    def __init__(self, models: list[tuple[str, str]], title: str = "Choose a model"):
        super().__init__()
        self.models = models  # (label, checkpoint path)
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="dialog-title")
            if self.models:
                yield OptionList(*[Option(label, id=str(i)) for i, (label, _) in enumerate(self.models)])
            else:
                yield Static("No models on disk yet. Train one on the Train screen (F1).")
            yield Static("Enter: open · Esc: cancel", classes="hint")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.models[int(event.option.id)][1])


class SaveDialog(Dialog):
    """Ask where to save some text; Enter saves."""

    def __init__(self, default_path: str):
        super().__init__()
        self.default_path = default_path

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Save the output to a file", classes="dialog-title")
            yield Input(self.default_path, id="save-path")
            yield Static("Enter: save · Esc: cancel", classes="hint")

    @on(Input.Submitted, "#save-path")
    def _save(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.dismiss(event.value.strip())


class NumberDialog(Dialog):
    """Ask for one whole number (used by Resume: how many more steps)."""

    def __init__(self, title: str, message: str, value: int):
        super().__init__()
        self.title_text, self.message, self.value = title, message, value

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="dialog-title")
            yield Static(self.message, markup=False)
            yield Input(str(self.value), id="number", type="integer")
            yield Static("Enter: go · Esc: cancel", classes="hint")

    @on(Input.Submitted, "#number")
    def _go(self, event: Input.Submitted) -> None:
        try:
            value = int(event.value)
        except ValueError:
            value = 0
        if value > 0:
            self.dismiss(value)
        else:
            self.notify("Give a whole number above 0.", severity="error")


class OptionsDialog(Dialog):
    """Every sampling setting as a field; Enter in any field applies them all."""

    FIELDS = (
        ("temperature", "Temperature (0 = always the likeliest)", "number"),
        ("temperature_b", "Temperature of the second pane (compare)", "number"),
        ("top_k", "Top-k (0 = off)", "integer"),
        ("top_p", "Top-p (1.0 = off)", "number"),
        ("length", "Length (tokens)", "integer"),
        ("seed", "Seed (empty = random)", "integer"),
    )

    DEFAULT_CSS = """
    OptionsDialog .option-row { height: auto; }
    OptionsDialog .option-row Label { width: 42; padding-top: 1; }
    OptionsDialog .option-row Input { width: 1fr; }
    """

    def __init__(self, values: dict, fields: tuple | None = None, title: str = "Sampling settings"):
        super().__init__()
        self.values = values
        self.fields = fields or self.FIELDS
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="dialog-title")
            for key, label, kind in self.fields:
                value = self.values.get(key)
                with Horizontal(classes="option-row"):
                    yield Label(label)
                    yield Input("" if value is None else str(value), id=f"opt-{key}", type=kind)
            yield Static("Enter: apply · Tab: next field · Esc: cancel", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        out = {}
        for key, _, kind in self.fields:
            raw = self.query_one(f"#opt-{key}", Input).value.strip()
            if not raw:
                out[key] = None
                continue
            try:
                out[key] = int(raw) if kind == "integer" else float(raw)
            except ValueError:
                self.notify(f"{key}: {raw!r} is not a number.", severity="error")
                return
        self.dismiss(out)
