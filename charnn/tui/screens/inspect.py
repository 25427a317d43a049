"""Inspect (F5): a text coloured by the model's surprise or by one unit, the model's top guesses
under the cursor, the unit finder's list, and the gradient-flow chart.

The network runs in a thread worker (charnn.inspect does the work); the screen only draws what it
returns. It opens the latest language model (a run still training: its newest best checkpoint; r
reloads it), or the one chosen with m.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from charnn.errors import CharnnError
from charnn.tui import braille
from charnn.tui.catalog import describe_loaded, latest_checkpoint, model_choices, model_key
from charnn.tui.inference import cpu_threads_for_ui, freeze_heap
from charnn.tui.screens.dialogs import FilePicker, ModelPicker
from charnn.tui.widgets.inspect_view import InspectView
from charnn.tui.widgets.line_chart import LineChart
from charnn.tui.widgets.mode_bar import ModeBar

SIGNAL_ORDER = ("c", "h", "i", "f", "o", "g")
MAX_CHARS = 200_000  # more than a screen can show; the CLI's --html takes whole books


class GradientChart(LineChart):
    """log10 of the mean ‖∂L_t/∂h_{t-k}‖ against k (the vanishing-gradient picture)."""

    empty = "k computes the gradient flow on this text"
    x_suffix = " k (steps back)"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.norms: list[float] = []
        self.label = ""

    def show(self, norms: list[float], label: str) -> None:
        self.norms, self.label = norms, label
        self.changed()

    def legend(self) -> list[tuple[str, str]]:
        return [(f" log10 ‖∂L/∂h(t−k)‖ against k · {self.label}", "title")]

    def lines(self) -> list[braille.Line]:
        ks = list(range(1, len(self.norms) + 1))
        return [braille.Line(ks, [float(np.log10(max(n, 1e-30))) for n in self.norms], "0")]

    def scale(self, lines):
        return braille.fit_scale(lines, settled=0.0, floor=None)

    def x_format(self, x: float) -> str:
        return f"{x:.0f}"


class InspectScreen(Screen):
    AUTO_FOCUS = "#insp-view"
    BINDINGS = [
        Binding("e", "edit", "Edit text"),
        Binding("escape", "done_editing", "Inspect", show=False),
        Binding("ctrl+o", "open_file", "Open file"),
        Binding("s", "colour_surprise", "Surprise"),
        Binding("u", "units", "Units"),
        Binding("n", "next_signal", "Signal c/h/i/f/o/g"),
        Binding("k", "gradients", "Gradients"),
        Binding("r", "reload", "Reload model"),
        Binding("m", "pick_model", "Model"),
    ]

    def __init__(self):
        super().__init__()
        self.loaded = None
        self.model_key: tuple[str, float] | None = None
        self.explicit = False
        self.text = ""
        self.result = None  # charnn.inspect.session.Inspection of self.text
        self.units: dict = {}  # UnitRef -> per-character values
        self.colour_by = None  # a UnitRef, or None for surprise
        self.busy = False

    def compose(self) -> ComposeResult:
        yield ModeBar("inspect")
        yield Static("model: looking…", id="insp-model", markup=False)
        yield Static("", id="insp-summary", markup=False)
        with Horizontal(id="insp-body"):
            with ContentSwitcher(initial="insp-view", id="insp-switcher"):
                yield InspectView("e: type or paste a text · ctrl+o: open a file", id="insp-view")
                yield TextArea(id="insp-edit", soft_wrap=True)
            with Vertical(id="insp-side"):
                yield Static("", id="insp-cursor", markup=False)
                yield OptionList(id="insp-units")
        yield GradientChart(id="insp-gradients")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#insp-gradients").display = False
        self.query_one("#insp-units").border_title = "unit finder"
        self.query_one("#insp-view").border_title = "surprise"

    def on_screen_resume(self) -> None:
        if not self.explicit:
            latest = latest_checkpoint("lm")
            if latest is None and self.loaded is None:
                self._model_line("no model yet: train one on the Train screen (F1), then come back here.")
            elif latest is not None and latest != self.model_key:
                self.open_model(latest[0], explicit=False)

    # -- model ------------------------------------------------------------------------
    def open_model(self, path: str, explicit: bool = True) -> None:
        self.explicit = self.explicit or explicit
        self.model_key = model_key(path)
        self._model_line(f"loading {path}…")
        self._load(path)

    @work(thread=True, exclusive=True, group="inspect")
    def _load(self, path: str) -> None:
        try:
            import torch

            torch.set_num_threads(cpu_threads_for_ui())
            from charnn.inspect.session import load_for_inspection

            loaded = load_for_inspection(path, "auto")
        except Exception as e:  # noqa: BLE001 - shown, never a crash
            self.app.call_from_thread(self._failed, _sentence(e, path), True)
            return
        self.app.call_from_thread(self._loaded, loaded)

    def _loaded(self, loaded) -> None:
        self.loaded = loaded
        freeze_heap()
        self._model_line(describe_loaded(loaded))
        if self.text:
            self.run_inspection()

    def _model_line(self, text: str) -> None:
        self.query_one("#insp-model", Static).update(f"model  {text}")

    def action_pick_model(self) -> None:
        def picked(path: str | None) -> None:
            if path:
                self.open_model(path)

        self.app.push_screen(ModelPicker(model_choices("lm"), "Inspect which model?"), picked)

    def action_reload(self) -> None:
        """Read the newest checkpoint again (a run still training saves a better one now and then)."""
        latest = None if self.explicit else latest_checkpoint("lm")
        path = latest[0] if latest else (self.model_key[0] if self.model_key else None)
        if path is None:
            self.notify("No model to reload: train one (F1) or choose one (m).", severity="warning")
            return
        self.open_model(path, explicit=self.explicit)

    # -- text -------------------------------------------------------------------------
    def action_edit(self) -> None:
        area = self.query_one("#insp-edit", TextArea)
        area.text = self.text
        self.query_one(ContentSwitcher).current = "insp-edit"
        self.call_after_refresh(area.focus)  # it can take focus once it is shown
        self._summary("editing · esc inspects the text")

    def action_done_editing(self) -> None:
        if self.query_one(ContentSwitcher).current != "insp-edit":
            return
        self.query_one(ContentSwitcher).current = "insp-view"
        self.query_one("#insp-view").focus()
        self.set_text(self.query_one("#insp-edit", TextArea).text)

    def action_open_file(self) -> None:
        def picked(path: str | None) -> None:
            if not path:
                return
            try:
                from charnn.text.corpus import read_text

                text = read_text(Path(path), "utf-8")
            except CharnnError as e:
                self.notify(str(e), title="Inspect", severity="error")
                return
            except OSError as e:
                self.notify(f"Could not read {path}: {e.strerror or e}.", title="Inspect", severity="error")
                return
            self.set_text(text)

        self.app.push_screen(FilePicker(title="Choose a text file to inspect"), picked)

    def set_text(self, text: str) -> None:
        """Inspect ``text`` (typed, pasted or read from a file)."""
        if len(text) > MAX_CHARS:
            self.notify(f"Inspecting the first {MAX_CHARS:,} of {len(text):,} characters "
                        f"(`charnn inspect --html` takes all of them).")
            text = text[:MAX_CHARS]
        if not text.strip():
            self.notify("The text is empty; type or paste some (e) or open a file (ctrl+o).", severity="warning")
            return
        self.text = text
        self.run_inspection()

    # -- inspecting (in a thread) ---------------------------------------------------------
    def run_inspection(self) -> None:
        if self.loaded is None:
            self.notify("The model is still loading; the text is inspected when it is ready."
                        if self.model_key else "No model to inspect: train one (F1) or choose one (m).")
            return
        self.busy = True
        self._summary("running the model over the text…")
        self._inspect(self.loaded, self.text)

    @work(thread=True, exclusive=True, group="inspect")
    def _inspect(self, loaded, text: str) -> None:
        from charnn.inspect.session import UnitRef, inspect_text

        try:
            found = inspect_text(loaded, text, find=True)
            refs = tuple(dict.fromkeys(UnitRef(m.layer, m.unit, m.signal) for m in found.findings.matches))
            traced = inspect_text(loaded, text, refs) if refs else found
        except Exception as e:  # noqa: BLE001 - shown, never a crash
            self.app.call_from_thread(self._failed, _sentence(e))
            return
        self.app.call_from_thread(self._inspected, found, traced.units)

    @work(thread=True, exclusive=True, group="inspect")
    def _trace(self, loaded, text: str, ref) -> None:
        from charnn.inspect.session import inspect_text

        try:
            values = inspect_text(loaded, text, (ref,)).units
        except Exception as e:  # noqa: BLE001 - shown, never a crash
            self.app.call_from_thread(self._failed, _sentence(e))
            return
        self.app.call_from_thread(self._traced, ref, values)

    def _failed(self, message: str, loading: bool = False) -> None:
        self.busy = False
        if loading:
            self.loaded, self.model_key = None, None
            self._model_line("no model loaded (m: choose one)")
        self._summary("")
        self.notify(message, title="Inspect", severity="error", timeout=10)

    def _inspected(self, result, units: dict) -> None:
        self.busy = False
        self.result, self.units = result, dict(units)
        self.colour_by = None if self.colour_by not in self.units else self.colour_by
        self._fill_finder()
        self._recolour(keep_cursor=False)

    def _traced(self, ref, values: dict) -> None:
        self.busy = False
        self.units.update(values)
        self.colour_by = ref
        self._recolour(keep_cursor=True)

    # -- colouring --------------------------------------------------------------------
    def _recolour(self, keep_cursor: bool = True) -> None:
        from charnn.inspect import colours

        r = self.result
        if r is None:
            return
        text = r.text
        if self.colour_by is None:
            rgb, what = colours.surprise_rgb(r.surprise.char_bits), "surprise (dark: expected · red: surprised)"
        else:
            rgb, what = colours.signed_rgb(self.units[self.colour_by]), f"unit {self.colour_by.name} (blue − · red +)"
        hexes = [f"#{a:02x}{b:02x}{c:02x}" for a, b, c in rgb.tolist()]
        view = self.query_one(InspectView)
        if keep_cursor and view.text == text:
            view.recolour(hexes)
            self._show_cursor(view.cursor)
        else:
            view.show(text, hexes)
        view.border_title = what
        self._summary(f"{r.bits_per_char:.4f} bits/char over {len(text):,} characters · colour: {what}")

    def _fill_finder(self) -> None:
        options = self.query_one("#insp-units", OptionList)
        options.clear_options()
        f = self.result.findings
        for i, m in enumerate(f.matches):
            options.add_option(Option(f"{m.probe[:14]:<14} {m.layer}:{m.unit} {m.signal} {m.r:+.2f}", id=str(i)))

    @on(OptionList.OptionSelected, "#insp-units")
    def _unit_picked(self, event: OptionList.OptionSelected) -> None:
        from charnn.inspect.session import UnitRef

        m = self.result.findings.matches[int(event.option.id)]
        self.colour_by = UnitRef(m.layer, m.unit, m.signal)
        self._recolour()
        self.query_one("#insp-view").focus()

    def action_colour_surprise(self) -> None:
        self.colour_by = None
        self._recolour()

    def action_units(self) -> None:
        units = self.query_one("#insp-units", OptionList)
        if units.highlighted is None and units.option_count:
            units.highlighted = 0  # so Enter picks at once, without an arrow key first
        units.focus()

    def action_next_signal(self) -> None:
        """The chosen unit's next signal (c, h, i, f, o, g; h only for a GRU or plain RNN)."""
        from charnn.inspect.activations import signals_of
        from charnn.inspect.session import UnitRef

        if self.colour_by is None or self.loaded is None:
            self.notify("Choose a unit from the finder's list first (u).", severity="warning")
            return
        ref = self.colour_by
        signals = [s for s in SIGNAL_ORDER if s in signals_of(self.loaded.model.config.cell)]
        nxt = UnitRef(ref.layer, ref.unit, signals[(signals.index(ref.signal) + 1) % len(signals)])
        if nxt in self.units:
            self.colour_by = nxt
            self._recolour()
        else:
            self._trace(self.loaded, self.text, nxt)

    # -- the cursor -------------------------------------------------------------------
    @on(InspectView.CursorMoved)
    def _cursor_moved(self, event: InspectView.CursorMoved) -> None:
        self._show_cursor(event.index)

    def _show_cursor(self, i: int) -> None:
        r = self.result
        panel = self.query_one("#insp-cursor", Static)
        if r is None or not r.text:
            panel.update("")
            return
        bits = float(r.surprise.char_bits[i])
        lines = [f"{r.text[i]!r} at {i:,}: " + ("(given)" if np.isnan(bits) else f"{bits:.2f} bits"),
                 "the model expected:"]
        lines += [f"  {g!r:<8} {p:6.1%}" for g, p in r.surprise.guesses(i, self.loaded.tokenizer)]
        chosen = [self.colour_by] if self.colour_by is not None else []
        best = [ref for ref in self.units if ref not in chosen][:4]
        if chosen or best:
            lines.append("units here:")
            lines += [f"{'▸' if ref in chosen else ' '} {ref.name:<9} {self.units[ref][i]:+.3f}" for ref in chosen + best]
        panel.update("\n".join(lines))

    # -- gradient flow ----------------------------------------------------------------
    def action_gradients(self) -> None:
        chart = self.query_one(GradientChart)
        if chart.display:
            chart.display = False
            return
        if self.loaded is None or not self.text:
            self.notify("Gradient flow needs a model and a text: type one (e) or open a file (ctrl+o).",
                        severity="warning")
            return
        chart.display = True
        chart.show([], "computing…")
        self._gradients(self.loaded, self.text)

    @work(thread=True, exclusive=True, group="gradients")
    def _gradients(self, loaded, text: str) -> None:
        from charnn.inspect.gradients import gradient_flow
        from charnn.inspect.session import encode

        try:
            flow = gradient_flow(loaded.model, encode(loaded.tokenizer, text))
        except Exception as e:  # noqa: BLE001 - shown, never a crash
            self.app.call_from_thread(self._failed, _sentence(e))
            return
        label = f"{flow.cell}, k = 1..{len(flow.norms)}"
        self.app.call_from_thread(self.query_one(GradientChart).show, flow.norms, label)

    def _summary(self, text: str) -> None:
        self.query_one("#insp-summary", Static).update(text)


def _sentence(e: Exception, path: str = "") -> str:
    if isinstance(e, CharnnError):
        return str(e)
    what = f"{path} could not be loaded" if path else "Inspection failed"
    return f"{what} ({type(e).__name__}: {e})."
