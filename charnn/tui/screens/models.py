"""Models: the runs on disk, with what they were trained on and how good they got.

Open one in Generate or Chat, resume its training, or delete it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from charnn.report import fmt_count, score, score_cell
from charnn.tui.catalog import fmt_date, run_checkpoint
from charnn.tui.screens.dialogs import ConfirmDialog, NumberDialog
from charnn.tui.widgets.mode_bar import ModeBar

COLUMNS = ("run", "kind", "tokens", "size", "params", "steps", "val bpc", "updated", "corpus")
NARROW_COLUMNS = ("run", "kind", "tokens", "size", "steps", "val bpc", "updated")
WIDE_AT = 110  # below this width the table drops params and corpus (the detail line shows them)
NARROW_NAME = 24


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class ModelsScreen(Screen):
    BINDINGS = [
        Binding("enter", "open", "Open"),
        Binding("o", "open", "Open", show=False),  # the table takes Enter itself; o reaches the screen
        Binding("r", "resume", "Resume training"),
        Binding("d", "delete", "Delete"),
        Binding("f5", "reload", "Refresh"),
    ]

    def __init__(self):
        super().__init__()
        self.rows: dict[str, dict] = {}
        self.wide: bool | None = None

    def compose(self) -> ComposeResult:
        yield ModeBar("models")
        yield DataTable(id="models-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="models-detail", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.reload()

    def on_resize(self) -> None:
        if (self.size.width >= WIDE_AT) != self.wide:
            self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    def action_reload(self) -> None:
        self.reload()

    def reload(self) -> None:
        from charnn.runtime.runs import bundled_model_info, bundled_models, list_runs

        table = self.query_one(DataTable)
        keep = table.cursor_row
        self.wide = self.size.width >= WIDE_AT
        columns = COLUMNS if self.wide else NARROW_COLUMNS
        table.clear(columns=True)
        self.rows = {}
        rows: list[tuple[str, list[str]]] = []
        for run in [*list_runs(), *(bundled_model_info(p) for p in bundled_models())]:
            key = run["path"]
            self.rows[key] = run
            name = run.get("name", Path(key).name)
            cells = {
                "run": name if self.wide else clip(name, NARROW_NAME),
                "kind": run.get("mode", "lm"),
                "tokens": run.get("tokenizer", "?"),
                "size": f"{run.get('layers', '?')}×{run.get('hidden', '?')}",
                "params": fmt_count(run.get("parameters", 0) or 0),
                "steps": f"{run.get('step', 0):,}",
                "val bpc": score_cell(run.get("held_out_bpc"), run.get("best_val_bpc")),
                "updated": "built-in" if run.get("bundled") else fmt_date(run.get("updated"), short=not self.wide),
                "corpus": os.path.basename(str(run.get("corpus", ""))),
            }
            rows.append((key, [cells[c] for c in columns]))
        for i, column in enumerate(columns):
            table.add_column(column, width=max([len(column)] + [len(cells[i]) for _, cells in rows]))
        for key, cells in rows:
            table.add_row(*cells, key=key)
        if table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1))
        self._show_detail()
        self.refresh_bindings()

    def selected(self) -> dict | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.rows.get(key)

    def on_data_table_row_highlighted(self) -> None:
        self._show_detail()
        self.refresh_bindings()

    def on_data_table_row_selected(self) -> None:
        self.action_open()

    def _show_detail(self) -> None:
        run = self.selected()
        detail = self.query_one("#models-detail", Static)
        if run is None:
            detail.update(Text("No trained runs yet. Start one on the Train screen (F1).", style="dim"))
            return
        params = fmt_count(run.get("parameters", 0) or 0)
        if run.get("bundled"):
            lines = [run["path"], f"A built-in model shipped with charnn · {params} parameters"]
        else:
            lines = [run["path"], f"corpus {run.get('corpus', '?')} · {params} parameters · "
                                  f"updated {fmt_date(run.get('updated'))}"]
        if label := score(run.get("held_out_bpc"), run.get("best_val_bpc")):
            lines[1] += f" · {label}"
        detail.update(Text("\n".join(lines), style="dim"))

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        run = self.selected() if self.is_mounted else None
        if action in ("open", "resume", "delete"):
            if run is None:
                return False
            if action != "open" and run.get("bundled"):
                return False
        return True

    def _active_run_dir(self) -> str | None:
        train = getattr(self.app, "train_screen", None)
        if train is not None and train.state.active and train.state.run_dir:
            return os.path.realpath(train.state.run_dir)
        return None

    # -- actions ----------------------------------------------------------------------
    def action_open(self) -> None:
        run = self.selected()
        if run is None:
            return
        ck = Path(run["path"]) if run.get("bundled") else run_checkpoint(run)
        if ck is None:
            self.notify("This run has no checkpoint yet.", severity="warning")
            return
        mode = "chat" if run.get("mode") == "chat" else "generate"
        self.app.open_model(mode, str(ck))  # type: ignore[attr-defined]

    def action_resume(self) -> None:
        run = self.selected()
        if run is None or run.get("bundled"):
            return
        if self._active_run_dir() == os.path.realpath(run["path"]):
            self.notify("This run is training right now (F1).", severity="warning")
            return
        if not (Path(run["path"]) / "last.pt").is_file():
            self.notify("This run has no last.pt to resume from.", severity="error")
            return
        step = int(run.get("step", 0) or 0)

        def go(more: int | None) -> None:
            if more:
                self.app.resume_training(run["path"], step + more)  # type: ignore[attr-defined]

        self.app.push_screen(NumberDialog(
            f"Resume {run['name']}", f"It has trained {step:,} steps. Train how many more?", 1000), go)

    def action_delete(self) -> None:
        run = self.selected()
        if run is None or run.get("bundled"):
            return
        from charnn import paths

        target = Path(run["path"]).resolve()
        if self._active_run_dir() == str(target):
            self.notify("This run is training right now; stop it first (F1, s).", severity="error")
            return
        if paths.runs_dir().resolve() not in target.parents:
            self.notify(f"{target} is outside the runs directory; delete it yourself if you mean to.",
                        severity="error")
            return

        def delete(yes: bool | None) -> None:
            if not yes:
                return
            try:
                shutil.rmtree(target)
            except OSError as e:
                self.notify(f"Could not delete {target}: {e.strerror or e}.", severity="error")
                return
            self.notify(f"Deleted {run['name']}.")
            self.reload()

        self.app.push_screen(ConfirmDialog(
            "Delete this run?",
            f"{run['name']} and its checkpoints ({target}) will be removed. This cannot be undone.",
            yes="Delete"), delete)
