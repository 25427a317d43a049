"""Models: the runs on disk, with what they were trained on and how good they got.

Open one in Generate or Chat, resume its training, or delete it; mark several (space) to see
their validation curves overlaid and the settings in which they differ.
"""

from __future__ import annotations

import os
import shutil

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from charnn.report import fmt_count, score, score_cell
from charnn.runtime.runs import RunRecord
from charnn.tui.catalog import fmt_date
from charnn.tui.run_state import Training
from charnn.tui.screens.dialogs import ConfirmDialog, NumberDialog
from charnn.tui.widgets.compare_chart import CompareChart
from charnn.tui.widgets.mode_bar import ModeBar

COLUMNS = ("run", "kind", "tokens", "size", "params", "steps", "val bpc", "from", "updated", "corpus")
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
        Binding("space", "mark", "Mark to compare"),
        Binding("x", "toggle_axis", "Tokens/time"),
        Binding("ctrl+r", "reload", "Refresh"),  # F5 is the Inspect screen
    ]

    class OpenModel(Message):
        """Open this checkpoint in Generate (``kind`` "lm") or Chat ("chat")."""

        def __init__(self, kind: str, path: str):
            super().__init__()
            self.kind, self.path = kind, path

    class ResumeRun(Message):
        """Continue this run on the Train screen until ``total_steps``."""

        def __init__(self, run_dir: str, total_steps: int):
            super().__init__()
            self.run_dir, self.total_steps = run_dir, total_steps

    def __init__(self, training: Training):
        super().__init__()
        self.training = training
        self.rows: dict[str, RunRecord] = {}
        self.wide: bool | None = None
        self.marked: list[str] = []  # row keys, in the order they were marked
        self.curves: list = []  # RunCurve of each marked run that has a history

    def compose(self) -> ComposeResult:
        yield ModeBar("models")
        yield DataTable(id="models-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="models-detail", markup=False)
        yield CompareChart(id="models-compare")
        yield Static("", id="models-differences", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.reload()
        self._show_comparison()

    def on_resize(self) -> None:
        if (self.size.width >= WIDE_AT) != self.wide:
            self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    def action_reload(self) -> None:
        self.reload()

    def _cells(self, run: RunRecord) -> dict[str, str]:
        mark = "● " if str(run.path) in self.marked else ""
        return {
            "run": mark + (run.name if self.wide else clip(run.name, NARROW_NAME)),
            "kind": run.mode,
            "tokens": run.tokenizer or "?",
            "size": f"{run.layers or '?'}×{run.hidden or '?'}",
            "params": fmt_count(run.parameters or 0),
            "steps": f"{run.step or 0:,}",
            "val bpc": score_cell(run.held_out_bpc, run.best_val_bpc),
            "from": run.init_from or "–",
            "updated": "built-in" if run.bundled else fmt_date(run.updated, short=not self.wide),
            "corpus": os.path.basename(run.corpus or ""),
        }

    def reload(self) -> None:
        from charnn.runtime.runs import list_models

        table = self.query_one(DataTable)
        keep = table.cursor_row
        self.wide = self.size.width >= WIDE_AT
        table.clear(columns=True)
        self.rows = {str(run.path): run for run in list_models()}
        fine_tuned = any(run.init_from for run in self.rows.values())  # else no "from" column
        columns = [c for c in (COLUMNS if self.wide else NARROW_COLUMNS) if c != "from" or fine_tuned]
        self.marked = [key for key in self.marked if key in self.rows]
        rows = [(key, [self._cells(run)[c] for c in columns]) for key, run in self.rows.items()]
        for i, column in enumerate(columns):
            table.add_column(column, width=max([len(column)] + [len(cells[i]) for _, cells in rows]))
        for key, cells in rows:
            table.add_row(*cells, key=key)
        if table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1))
        self._show_detail()
        self.refresh_bindings()

    def selected(self) -> RunRecord | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.rows.get(key) if key is not None else None

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
        params = fmt_count(run.parameters or 0)
        if run.bundled:
            lines = [str(run.path), f"A built-in model shipped with charnn · {params} parameters"]
        else:
            lines = [str(run.path), f"corpus {run.corpus or '?'} · {params} parameters · "
                                    f"updated {fmt_date(run.updated)}"]
        if run.init_from:
            lines[1] += f" · from {run.init_from}"
        if label := score(run.held_out_bpc, run.best_val_bpc):
            lines[1] += f" · {label}"
        if run.hits_at_1 is not None:  # a chat model's headline figures, from `charnn eval`
            lines[1] += (f" · reply bpc {run.reply_bpc or 0:.3f} · hits@1 of 20 {run.hits_at_1:.3f}"
                         f" (PMI {run.hits_at_1_pmi or 0:.3f})")
        detail.update(Text("\n".join(lines), style="dim"))

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        run = self.selected() if self.is_mounted else None
        if action == "toggle_axis":
            return len(self.curves) >= 2
        if action == "mark":
            return run is not None and not run.bundled
        if action in ("open", "resume", "delete"):
            if run is None:
                return False
            if action != "open" and run.bundled:
                return False
        return True

    def _active_run_dir(self) -> str | None:
        state = self.training.state
        return os.path.realpath(state.run_dir) if state.active and state.run_dir else None

    # -- comparing runs ------------------------------------------------------------------
    def action_mark(self) -> None:
        """Mark the run under the cursor (or unmark it); two or more marked show their curves."""
        run = self.selected()
        if run is None or run.bundled:
            return
        key = str(run.path)
        if key in self.marked:
            self.marked.remove(key)
        else:
            self.marked.append(key)
        self.reload()
        self._show_comparison()

    def action_toggle_axis(self) -> None:
        chart = self.query_one(CompareChart)
        chart.show(self.curves, "seconds" if chart.axis == "tokens" else "tokens")

    def _show_comparison(self) -> None:
        from charnn.errors import CharnnError
        from charnn.tui.run_curves import differences, read_curve

        curves = []
        for key in self.marked:
            try:
                curves.append(read_curve(self.rows[key]))
            except (CharnnError, OSError) as e:
                self.notify(str(e), severity="warning")
        self.curves = curves
        showing = len(curves) >= 2
        chart, diffs = self.query_one(CompareChart), self.query_one("#models-differences", Static)
        chart.display = diffs.display = showing
        chart.show(curves)
        if showing:
            lines = [f"{key}: " + " · ".join(f"{c.name} {v}" for c, v in zip(curves, values, strict=True))
                     for key, values in differences(curves)]
            diffs.update(Text("\n".join(lines) or "the runs' settings are the same", style="dim"))
        self.refresh_bindings()

    # -- actions ----------------------------------------------------------------------
    def action_open(self) -> None:
        run = self.selected()
        if run is None:
            return
        checkpoint = run.checkpoint()
        if checkpoint is None:
            self.notify("This run has no checkpoint yet.", severity="warning")
            return
        self.post_message(self.OpenModel(run.mode, str(checkpoint)))

    def action_resume(self) -> None:
        run = self.selected()
        if run is None or run.bundled:
            return
        if self._active_run_dir() == os.path.realpath(run.path):
            self.notify("This run is training right now (F1).", severity="warning")
            return
        if not run.resumable:
            self.notify("This run has no last.pt to resume from.", severity="error")
            return
        step = run.step or 0

        def go(more: int | None) -> None:
            if more:
                self.post_message(self.ResumeRun(str(run.path), step + more))

        self.app.push_screen(NumberDialog(
            f"Resume {run.name}", f"It has trained {step:,} steps. Train how many more?", 1000), go)

    def action_delete(self) -> None:
        run = self.selected()
        if run is None or run.bundled:
            return
        from charnn import paths

        target = run.path.resolve()
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
            self.notify(f"Deleted {run.name}.")
            self.reload()
            self._show_comparison()

        self.app.push_screen(ConfirmDialog(
            "Delete this run?",
            f"{run.name} and its checkpoints ({target}) will be removed. This cannot be undone.",
            yes="Delete"), delete)
