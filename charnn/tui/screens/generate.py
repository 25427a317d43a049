"""Generate: pick a model, type a prompt, stream text; compare two temperatures side by side.

Generation runs in a thread worker (sampling a few hundred tokens is light)
and streams into the panes in small batches, so the UI keeps its frame rate.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Static
from textual.worker import get_current_worker

from charnn.errors import CharnnError
from charnn.tui.catalog import describe_loaded, latest_checkpoint, model_choices, model_key
from charnn.tui.inference import FLUSH_S, MAX_TEMP, TEMP_STEP, cpu_threads_for_ui, freeze_heap
from charnn.tui.screens.dialogs import ModelPicker, OptionsDialog, SaveDialog
from charnn.tui.widgets.mode_bar import ModeBar
from charnn.tui.widgets.text_stream import TextStream

TEMPS = Binding.Group("Temp", compact=True)
TEMPS_B = Binding.Group("Temp B", compact=True)


@dataclass
class SampleSettings:
    temperature: float = 0.8
    temperature_b: float = 1.2
    top_k: int = 0
    top_p: float = 1.0
    length: int = 500
    seed: int | None = None


class GenerateScreen(Screen):
    AUTO_FOCUS = "#out-a"  # not the prompt: single keys (g, -, +, c…) work at once
    BINDINGS = [
        Binding("g", "generate", "Generate"),
        Binding("minus", "temp(-1)", "Temp", key_display="-", group=TEMPS),
        Binding("plus,equals_sign", "temp(1)", "Temp", key_display="+", group=TEMPS),
        # shown on the settings line ("temp B 1.20 ([/])") rather than in a full footer
        Binding("left_square_bracket", "temp_b(-1)", "Temp B", key_display="[", group=TEMPS_B, show=False),
        Binding("right_square_bracket", "temp_b(1)", "Temp B", key_display="]", group=TEMPS_B, show=False),
        Binding("c", "compare", "Compare"),
        Binding("p", "focus_prompt", "Prompt", show=False),  # the prompt row's label shows the key
        Binding("o", "options", "Options"),
        Binding("m", "pick_model", "Model"),
        Binding("s", "save", "Save"),
        Binding("x", "stop_generating", "Stop"),
        Binding("n", "novelty", "Novelty"),
        Binding("escape", "leave_prompt", "Leave prompt", show=False),
    ]

    def __init__(self):
        super().__init__()
        self.settings = SampleSettings()
        self.compare = False
        self.loaded = None
        self.model_key: tuple[str, float] | None = None  # (path, mtime) of what is loaded or loading
        self.explicit = False  # the user chose the model: do not follow the latest run
        self.generating = False
        self.last_seed: int | None = None

    def compose(self) -> ComposeResult:
        yield ModeBar("generate")
        yield Static("model: looking…", id="gen-model", markup=False)
        with Horizontal(id="gen-prompt-row"):
            yield Label("[b]p[/b] Prompt", id="gen-prompt-label")
            yield Input(placeholder="text to continue (optional) · Enter generates", id="prompt", compact=True)
        yield Static("", id="gen-settings")
        with Horizontal(id="gen-outputs"):
            yield TextStream("Press g to generate (p to type a prompt first).", id="out-a")
            yield TextStream("", id="out-b")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#out-b").display = False
        self._show_settings()
        self.query_one("#out-a").focus()

    def on_screen_resume(self) -> None:
        if not self.explicit:
            latest = latest_checkpoint("lm")
            if latest is None:
                if self.loaded is None:
                    self._set_model_line("no model yet: train one on the Train screen (F1), then come back here.")
            elif latest != self.model_key:
                self.open_model(latest[0], explicit=False)

    # -- model ------------------------------------------------------------------------
    def open_model(self, path: str, explicit: bool = True) -> None:
        self.explicit = self.explicit or explicit
        self.model_key = model_key(path)
        self._set_model_line(f"loading {path}…")
        self._load(path)

    @work(thread=True, exclusive=True, group="load")
    def _load(self, path: str) -> None:
        try:
            import torch

            torch.set_num_threads(cpu_threads_for_ui())
            from charnn.runtime.loading import load_model

            loaded = load_model(path, "lm", "auto")
        except CharnnError as e:
            self.app.call_from_thread(self._load_failed, str(e))
            return
        except Exception as e:  # noqa: BLE001 - any failure to load is shown, never a crash
            self.app.call_from_thread(self._load_failed, f"{path} could not be loaded ({type(e).__name__}: {e}).")
            return
        self.app.call_from_thread(self._loaded, loaded)

    def _loaded(self, loaded) -> None:
        self.loaded = loaded
        freeze_heap()
        self._set_model_line(describe_loaded(loaded))

    def _load_failed(self, message: str) -> None:
        self.loaded = None
        self.model_key = None
        self._set_model_line("no model loaded (m: choose one)")
        self.notify(message, title="Model", severity="error", timeout=10)

    def _set_model_line(self, text: str) -> None:
        self.query_one("#gen-model", Static).update(f"model  {text}")

    def action_pick_model(self) -> None:
        def picked(path: str | None) -> None:
            if path:
                self.open_model(path)

        self.app.push_screen(ModelPicker(model_choices("lm"), "Generate with which model?"), picked)

    # -- settings ---------------------------------------------------------------------
    def _show_settings(self) -> None:
        s = self.settings
        seed = f"{s.seed}" if s.seed is not None else "random" + (f" (last {self.last_seed})" if self.last_seed is not None else "")
        parts = [f"[b]temp {s.temperature:.2f}[/b] [dim](-/+)[/dim]"]
        if self.compare:
            parts.append(f"[b]temp B {s.temperature_b:.2f}[/b] [dim](\\[/])[/dim]")
        parts += [f"top-k {s.top_k or 'off'}", f"top-p {s.top_p:.2f}", f"length {s.length}", f"seed {seed}"]
        self.query_one("#gen-settings", Static).update(" · ".join(parts))
        a, b = self.query_one("#out-a", TextStream), self.query_one("#out-b", TextStream)
        a.border_title = f"temperature {s.temperature:.2f}"
        b.border_title = f"temperature {s.temperature_b:.2f}"

    def action_temp(self, direction: int) -> None:
        s = self.settings
        s.temperature = round(min(MAX_TEMP, max(0.0, s.temperature + direction * TEMP_STEP)), 2)
        self._show_settings()

    def action_temp_b(self, direction: int) -> None:
        s = self.settings
        s.temperature_b = round(min(MAX_TEMP, max(0.0, s.temperature_b + direction * TEMP_STEP)), 2)
        self._show_settings()

    def action_compare(self) -> None:
        self.compare = not self.compare
        self.query_one("#out-b").display = self.compare
        self._show_settings()
        self.refresh_bindings()

    def action_options(self) -> None:
        s = self.settings

        def apply(values: dict | None) -> None:
            if not values:
                return
            for key in ("temperature", "temperature_b", "top_p"):
                if values.get(key) is not None:
                    setattr(s, key, float(values[key]))
            for key in ("top_k", "length"):
                if values.get(key) is not None:
                    setattr(s, key, int(values[key]))
            s.seed = values.get("seed")
            s.temperature = min(MAX_TEMP, max(0.0, s.temperature))
            s.temperature_b = min(MAX_TEMP, max(0.0, s.temperature_b))
            s.top_k, s.length = max(0, s.top_k), max(1, min(s.length, 100_000))
            s.top_p = min(1.0, max(0.01, s.top_p))
            self._show_settings()

        self.app.push_screen(OptionsDialog(vars(s).copy()), apply)

    def action_focus_prompt(self) -> None:
        self.query_one("#prompt", Input).focus()

    def action_leave_prompt(self) -> None:
        if self.focused is self.query_one("#prompt"):
            self.query_one("#out-a").focus()
        elif self.generating:
            self.action_stop_generating()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "temp_b":
            return self.compare
        if action == "stop_generating":
            return self.generating
        return True

    # -- generating -------------------------------------------------------------------
    @on(Input.Submitted, "#prompt")
    def _prompt_submitted(self) -> None:
        self.query_one("#out-a").focus()
        self.action_generate()

    def action_generate(self) -> None:
        if self.loaded is None:
            if self.model_key is not None:
                self.notify("The model is still loading; try again in a moment.")
            else:
                self.notify("No model to generate with: train one on the Train screen (F1) or choose one (m).",
                            severity="warning")
            return
        from charnn.config import SampleConfig

        s = self.settings
        seed = s.seed if s.seed is not None else random.randrange(2**31)
        self.last_seed = seed
        prompt = self.query_one("#prompt", Input).value
        temps = [s.temperature] + ([s.temperature_b] if self.compare else [])
        jobs = []
        for pane_id, temp in zip(("#out-a", "#out-b"), temps, strict=False):
            pane = self.query_one(pane_id, TextStream)
            pane.reset(prompt)
            pane.border_subtitle = ""
            jobs.append((pane, SampleConfig(temperature=temp, top_k=s.top_k, top_p=s.top_p, length=s.length,
                                            prime=prompt, seed=seed)))
        self._show_settings()
        self.generating = True
        self.refresh_bindings()
        self._generate(jobs, self.loaded)

    @work(thread=True, exclusive=True, group="generate")
    def _generate(self, jobs: list, loaded) -> None:
        """Round-robin over the panes' token streams, handing text to the UI in small batches."""
        import torch

        from charnn.decoding.sampling import generate_text

        worker = get_current_worker()
        streams = []
        # one inference mode around both streams: each generator's own `with inference_mode()`
        # would otherwise switch it off for the other when the first one finishes
        inference = torch.inference_mode()
        inference.__enter__()
        try:
            for pane, cfg in jobs:
                gen = torch.Generator(device=loaded.device)
                gen.manual_seed(cfg.seed)
                streams.append((pane, generate_text(loaded.model, loaded.tokenizer, cfg, loaded.device, gen)))
            pending = [""] * len(streams)
            live = list(range(len(streams)))
            last = time.monotonic()
            while live and not worker.is_cancelled:
                for i in list(live):
                    try:
                        pending[i] += next(streams[i][1])
                    except StopIteration:
                        live.remove(i)
                if time.monotonic() - last >= FLUSH_S or not live:
                    batch = [(streams[i][0], pending[i]) for i in range(len(streams)) if pending[i]]
                    pending = [""] * len(streams)
                    last = time.monotonic()
                    if batch:
                        self.app.call_from_thread(self._append, batch)
        except CharnnError as e:
            self.app.call_from_thread(self.notify, str(e), title="Generate", severity="error", timeout=10)
        except Exception as e:  # noqa: BLE001 - shown, never a crash
            self.app.call_from_thread(self.notify, f"Generation failed: {type(e).__name__}: {e}",
                                      title="Generate", severity="error", timeout=10)
        finally:
            for _, stream in streams:
                stream.close()
            inference.__exit__(None, None, None)
            if not worker.is_cancelled:
                self.app.call_from_thread(self._finished)

    def _append(self, batch: list) -> None:
        for pane, text in batch:
            pane.append(text)

    def _finished(self) -> None:
        self.generating = False
        self.refresh_bindings()

    def action_stop_generating(self) -> None:
        self.workers.cancel_group(self, "generate")
        self._finished()

    # -- novelty ----------------------------------------------------------------------
    def action_novelty(self) -> None:
        """The share of the generated text that is new; spans of 20+ characters copied verbatim from
        the training text are highlighted."""
        pane = self.query_one("#out-a", TextStream)
        if self.loaded is None or not pane.text:
            self.notify("Generate some text first (g); n then checks it against the training text.",
                        severity="warning")
            return
        self.notify("Checking the text against the model's training text…", title="Novelty")
        self._novelty(self.loaded, [(p, p.text) for p in self.query(TextStream) if p.display and p.text])

    @work(thread=True, exclusive=True, group="novelty")
    def _novelty(self, loaded, panes: list) -> None:
        from charnn.inspect.novelty import corpus_path, novelty, novelty_index

        try:
            settings = loaded.checkpoint.get("settings") or {}
            index = novelty_index(corpus_path(loaded.checkpoint), settings.get("encoding", "utf-8"),
                                  settings.get("errors", "strict"))
            results = [(pane, novelty(index, text)) for pane, text in panes]
        except CharnnError as e:
            self.app.call_from_thread(self.notify, str(e), title="Novelty", severity="warning", timeout=10)
            return
        except Exception as e:  # noqa: BLE001 - shown, never a crash
            self.app.call_from_thread(self.notify, f"Novelty failed: {type(e).__name__}: {e}",
                                      title="Novelty", severity="error", timeout=10)
            return
        self.app.call_from_thread(self._show_novelty, results)

    def _show_novelty(self, results: list) -> None:
        from charnn.inspect.novelty import SPAN

        for pane, result in results:
            pane.highlight(result.copied)
            pane.border_subtitle = (f"{result.new_share:.1%} new · {len(result.copied)} span(s) of {SPAN}+ "
                                    f"characters copied (highlighted)")
            self.notify(pane.border_subtitle + (f"; {result.note}" if result.note else ""), title="Novelty")

    # -- saving -----------------------------------------------------------------------
    def output_text(self) -> str:
        a, b = self.query_one("#out-a", TextStream), self.query_one("#out-b", TextStream)
        s = self.settings
        if not self.compare:
            return a.full_text
        return (f"--- temperature {s.temperature:.2f} ---\n{a.full_text}\n\n"
                f"--- temperature {s.temperature_b:.2f} ---\n{b.full_text}\n")

    def action_save(self) -> None:
        if not self.output_text().strip():
            self.notify("Nothing to save yet: generate first (g).", severity="warning")
            return
        name = "sample"
        if self.loaded is not None:
            name = self.loaded.checkpoint.get("run_name") or Path(self.loaded.path).stem
        default = str(Path.cwd() / f"charnn-{name}-{time.strftime('%Y%m%d-%H%M%S')}.txt")

        def save(path: str | None) -> None:
            if not path:
                return
            target = Path(path).expanduser()
            try:
                target.write_text(self.output_text(), encoding="utf-8")
            except OSError as e:
                self.notify(f"Could not save to {target}: {e.strerror or e}.", severity="error")
                return
            self.notify(f"Saved to {target}.")

        self.app.push_screen(SaveDialog(default), save)
