"""Chat: talk to a seq2seq chat model; the reply streams in, the context it reads is on show.

Until a chat model exists, the screen says how to train one.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Input, Static
from textual.worker import get_current_worker

from charnn.errors import CharnnError
from charnn.tui.catalog import describe_loaded, latest_checkpoint, model_choices, model_key
from charnn.tui.inference import FLUSH_S, MAX_TEMP, TEMP_STEP, cpu_threads_for_ui, freeze_heap
from charnn.tui.screens.dialogs import ModelPicker
from charnn.tui.widgets.mode_bar import ModeBar

MAX_CONTEXT = 16
BEAMS = (0, 5, 10)  # the "b" key cycles through these (0: sampling)
MMI_WEIGHTS = (0.0, 0.25, 0.5, 1.0)  # the "a" key: anti-LM weights
MIN_WORDS = (0, 3, 5)  # the "n" key: shortest reply in words
SAMPLES = (1, 4, 8)  # the "s" key: replies drawn when sampling, the best said
TEMP = Binding.Group("Temp", compact=True)
CONTEXT = Binding.Group("Context", compact=True)
HOW_TO_TRAIN = """[b]No chat model yet.[/b]

A chat model is an encoder–decoder that reads the last few turns of a conversation and writes the next one. \
Train one from a dialogue corpus (see [b]charnn corpora[/b]), for example in a shell:

    [b]charnn train --mode chat CORPUS[/b]

or here: on the Train screen (F1) choose the corpus and put [b]--mode chat[/b] in Extra flags. \
When it has saved a checkpoint, come back to this screen (F3)."""


class ChatMessage(Static):
    """One turn: who said it, and the text (never parsed as markup)."""

    def __init__(self, who: str, text: str = ""):
        super().__init__(classes=f"chat-message chat-{who}")
        self.who = who
        self.text = text
        self.label = "you  " if who == "user" else "model  "

    def on_mount(self) -> None:
        self._show()

    def append(self, piece: str) -> None:
        self.text += piece
        self._show()

    def _show(self) -> None:
        self.update(Text.assemble((self.label, "bold dim"), self.text or "…"))


class ChatScreen(Screen):
    AUTO_FOCUS = ""  # on_screen_resume focuses the input once a model is loaded
    BINDINGS = [
        Binding("minus", "temp(-1)", "Temp", key_display="-", group=TEMP),
        Binding("plus,equals_sign", "temp(1)", "Temp", key_display="+", group=TEMP),
        Binding("left_square_bracket", "context(-1)", "Context", key_display="[", group=CONTEXT),
        Binding("right_square_bracket", "context(1)", "Context", key_display="]", group=CONTEXT),
        Binding("b", "cycle('beam')", "Beam"),
        Binding("a", "cycle('mmi')", "Anti-LM"),
        Binding("n", "cycle('min_words')", "Min words"),
        Binding("s", "cycle('samples')", "Samples"),
        Binding("c", "candidates", "N-best"),
        Binding("r", "reset", "Reset"),
        Binding("h", "attention", "Heat strip"),
        Binding("m", "pick_model", "Model"),
        Binding("i", "focus_input", "Type"),
        Binding("escape", "leave_input", "Keys"),
    ]

    def __init__(self):
        super().__init__()
        self.session = None
        self.model_key: tuple[str, float] | None = None
        self.explicit = False
        self.replying = False
        self.temperature: float | None = None  # None until changed here: the default decoding's
        self.show_candidates = False

    def compose(self) -> ComposeResult:
        yield ModeBar("chat")
        with ContentSwitcher(initial="chat-empty", id="chat-switcher"):
            yield Static(HOW_TO_TRAIN, id="chat-empty")
            with Vertical(id="chat-main"):
                yield Static("", id="chat-model", markup=False)
                yield Static("", id="chat-settings")
                with Horizontal(id="chat-body"):
                    yield VerticalScroll(id="conversation")
                    yield Static("", id="context-panel")
                yield Static("", id="context-line")
                yield Input(placeholder="say something · Enter sends · Esc for keys", id="chat-input")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#context-panel").border_title = "context the model reads"

    def on_screen_resume(self) -> None:
        if not self.explicit:
            latest = latest_checkpoint("chat")
            if latest is not None and latest != self.model_key:
                self.open_model(latest[0], explicit=False)
        if self.session is not None:
            self.query_one("#chat-input", Input).focus()

    # -- model ------------------------------------------------------------------------
    def open_model(self, path: str, explicit: bool = True) -> None:
        self.explicit = self.explicit or explicit
        self.model_key = model_key(path)
        self.query_one(ContentSwitcher).current = "chat-main"
        self.query_one("#chat-model", Static).update(f"model  loading {path}…")
        self._load(path)

    @work(thread=True, exclusive=True, group="load")
    def _load(self, path: str) -> None:
        try:
            import torch

            torch.set_num_threads(cpu_threads_for_ui())
            from charnn.chat import ChatSession
            from charnn.runtime.loading import load_model

            loaded = load_model(path, "chat", "auto")
            session = ChatSession(loaded, temperature=self.temperature)
        except CharnnError as e:
            self.app.call_from_thread(self._load_failed, str(e))
            return
        except Exception as e:  # noqa: BLE001 - shown, never a crash
            self.app.call_from_thread(self._load_failed, f"{path} could not be loaded ({type(e).__name__}: {e}).")
            return
        self.app.call_from_thread(self._loaded, session)

    def _loaded(self, session) -> None:
        self.session = session
        freeze_heap()
        self.query_one("#chat-model", Static).update(f"model  {describe_loaded(session.loaded)}")
        self.query_one("#conversation").remove_children()
        self._show_settings()
        if self.app.screen is self:
            self.query_one("#chat-input", Input).focus()

    def _load_failed(self, message: str) -> None:
        self.session = None
        self.model_key = None
        self.query_one(ContentSwitcher).current = "chat-empty"
        self.notify(message, title="Chat model", severity="error", timeout=10)

    def action_pick_model(self) -> None:
        def picked(path: str | None) -> None:
            if path:
                self.open_model(path)

        self.app.push_screen(ModelPicker(model_choices("chat"), "Chat with which model?"), picked)

    # -- settings ---------------------------------------------------------------------
    def _show_settings(self) -> None:
        s = self.session
        if s is None:
            return
        how = (f"[b]beam {s.beam}[/b] [dim](b)[/dim]" if s.beam else
               f"[b]sampling[/b] [dim](b)[/dim], [b]temp {s.temperature:.2f}[/b] [dim](-/+)[/dim], "
               f"[b]best of {s.samples}[/b] [dim](s)[/dim]")
        self.query_one("#chat-settings", Static).update(
            f"{how} · [b]anti-LM {s.mmi:g}[/b] [dim](a)[/dim] · [b]min {s.min_words} words[/b] [dim](n)[/dim] · "
            f"[b]context {s.context_turns}[/b] [dim](\\[/])[/dim] · ≤ {s.max_length} tokens"
        )
        panel = self.query_one("#context-panel", Static)
        if self.show_candidates:
            panel.border_title = "candidates for the last reply (c: back to the context)"
            panel.update(self._candidates_text())
            return
        panel.border_title = "context the model reads"
        turns = s.context_in_use()
        lines = Text()
        for i, turn in enumerate(turns):
            lines.append(("you: " if (len(turns) - i) % 2 == 0 else "model: "), style="dim")
            lines.append(turn + "\n")
        lines.append("+ your next message", style="italic dim")
        self.query_one("#context-panel", Static).update(lines)
        self.query_one("#context-panel", Static).border_title = "context the model reads"
        short = " · ".join(f"“{t[:24]}”" for t in turns) or "only your next message"
        self.query_one("#context-line", Static).update(Text(f"context: {short}", style="dim", no_wrap=True,
                                                            overflow="ellipsis"))

    def _candidates_text(self) -> Text:
        from charnn.chat import format_candidates

        s = self.session
        if not s.candidates:
            return Text("No reply yet.", style="dim")
        lines = format_candidates(s.candidates)
        text = Text(lines[0] + "\n", style="bold dim")
        for line in lines[1:]:
            text.append(line + "\n")
        text.append("score ranks them: (log p - anti-LM x prior) per length; prior = log p of the first tokens "
                    "with no context", style="italic dim")
        return text

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        typing = isinstance(self.focused, Input)
        if action in ("temp", "context", "reset", "focus_input", "cycle", "candidates", "attention"):
            return self.session is not None and not typing
        if action == "leave_input":
            return typing
        if action == "pick_model":
            return not typing
        return True

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()

    def on_descendant_blur(self) -> None:
        self.refresh_bindings()

    def action_temp(self, direction: int) -> None:
        if self.session is None:
            return
        self.temperature = round(min(MAX_TEMP, max(0.0, self.session.temperature + direction * TEMP_STEP)), 2)
        self.session.set_beam(0)  # a temperature asks for sampling (and its guards)
        self.session.temperature = self.temperature
        self._show_settings()

    def action_cycle(self, name: str) -> None:
        """The next value of a decoding setting (beam, anti-LM weight, minimum words, samples), wrapping round."""
        if self.session is None:
            return
        steps = {"beam": BEAMS, "mmi": MMI_WEIGHTS, "min_words": MIN_WORDS, "samples": SAMPLES}[name]
        now = getattr(self.session, name)
        later = [v for v in steps if v > now]
        value = later[0] if later else steps[0]
        if name == "beam":
            self.session.set_beam(value)  # sampling <-> beam search also switches the guards
        elif name == "samples":
            self.session.samples = value
        else:
            self.session.set_guard(name, value)
        self._show_settings()

    def action_candidates(self) -> None:
        self.show_candidates = not self.show_candidates
        self._show_settings()

    def action_context(self, direction: int) -> None:
        if self.session is None:
            return
        self.session.context_turns = min(MAX_CONTEXT, max(1, self.session.context_turns + direction))
        self._show_settings()

    def action_reset(self) -> None:
        if self.session is None:
            return
        self.workers.cancel_group(self, "reply")
        self.session.reset()
        self.query_one("#conversation").remove_children()
        self.replying = False
        self._show_settings()
        self.notify("Conversation cleared.")

    def action_attention(self) -> None:
        """Show (or hide) the last reply's attention over the context pane's words as a heat strip."""
        s = self.session
        if s is None or len(s.history) < 2:
            self.notify("Say something first: the strip shows what the last reply looked at.")
            return
        panel = self.query_one("#context-panel", Static)
        if panel.border_title != "context the model reads":
            self._show_settings()  # hide: back to the plain context
            panel.border_title = "context the model reads"
            return
        self._attention(s, list(s.history))

    @work(thread=True, exclusive=True, group="attention")
    def _attention(self, session, history: list[str]) -> None:
        from charnn.tui.widgets.attention_strip import heat_strip, reply_attention

        turns = history[:-1][-session.context_turns :] if session.context_turns > 0 else []
        words = reply_attention(session.model, session.tokenizer, turns, history[-1], session.context_turns)
        speakers = [("you: " if (len(turns) - i) % 2 == 1 else "model: ") for i in range(len(turns))][-len(words):]
        self.app.call_from_thread(self._show_attention, heat_strip(words, speakers))

    def _show_attention(self, strip) -> None:
        panel = self.query_one("#context-panel", Static)
        panel.update(strip)
        panel.border_title = "what the last reply looked at"

    def action_focus_input(self) -> None:
        self.query_one("#chat-input", Input).focus()

    def action_leave_input(self) -> None:
        self.query_one("#conversation").focus()

    # -- talking ----------------------------------------------------------------------
    @on(Input.Submitted, "#chat-input")
    def _send(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text or self.session is None:
            return
        if self.replying:
            self.notify("The model is still replying.", severity="warning")
            return
        event.input.value = ""
        conversation = self.query_one("#conversation", VerticalScroll)
        conversation.mount(ChatMessage("user", text))
        bubble = ChatMessage("model")
        conversation.mount(bubble)
        conversation.scroll_end(animate=False)
        self.replying = True
        self._reply(self.session, text, bubble)

    @work(thread=True, exclusive=True, group="reply")
    def _reply(self, session, text: str, bubble: ChatMessage) -> None:
        worker = get_current_worker()
        pending, last = "", time.monotonic()
        try:
            stream = session.reply_stream(text)
            for piece in stream:
                pending += piece
                if worker.is_cancelled:
                    stream.close()
                    return
                if time.monotonic() - last >= FLUSH_S:
                    self.app.call_from_thread(self._append, bubble, pending)
                    pending, last = "", time.monotonic()
        except CharnnError as e:
            self.app.call_from_thread(self.notify, str(e), title="Chat", severity="error", timeout=10)
        except Exception as e:  # noqa: BLE001 - shown, never a crash
            self.app.call_from_thread(self.notify, f"The reply failed: {type(e).__name__}: {e}",
                                      title="Chat", severity="error", timeout=10)
        finally:
            if not worker.is_cancelled:
                self.app.call_from_thread(self._replied, bubble, pending)

    def _append(self, bubble: ChatMessage, text: str) -> None:
        bubble.append(text)
        self.query_one("#conversation", VerticalScroll).scroll_end(animate=False)

    def _replied(self, bubble: ChatMessage, rest: str) -> None:
        if rest:
            bubble.append(rest)
        if not bubble.text:
            bubble.append("(no reply)")
        self.replying = False
        self._show_settings()
        self.query_one("#conversation", VerticalScroll).scroll_end(animate=False)
