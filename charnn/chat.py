"""Chatting with a seq2seq model: the conversation and the ``charnn chat`` REPL.

``ChatSession`` keeps the conversation and asks ``charnn.decoding.replies``
for each reply; the ``charnn chat`` REPL and the TUI's Chat screen both drive it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from charnn.decoding.replies import (
    Candidate,
    Decoding,
    default_decoding,
    generate_reply,
    validate_chat_options,
)
from charnn.errors import CharnnError

if TYPE_CHECKING:
    from charnn.runtime.loading import LoadedModel


class ChatSession:
    """A conversation with a chat model. Settings are plain attributes; change them between replies."""

    def __init__(self, loaded: LoadedModel, context_turns: int | None = None, temperature: float | None = None,
                 top_k: int = 0, top_p: float = 1.0, beam: int | None = None, max_length: int = 200,
                 seed: int | None = None, mmi: float | None = None, min_words: int | None = None,
                 samples: int | None = None):
        """Unset decoding settings (None) take the default decoding's (``charnn.presets.CHAT_DECODING``), the
        guards those of its kind (``CHAT_BEAM_GUARDS``, ``CHAT_SAMPLING_GUARDS``); a temperature without a
        beam width asks for sampling."""
        import torch

        if loaded.kind != "chat":
            raise CharnnError(f"{loaded.path} is a language model, not a chat model; use it with charnn generate.")
        if beam is None and temperature is not None:
            beam = 0  # a temperature alone asks for sampling
        default = default_decoding(max_length, beam)
        beam = default.beam
        self.pinned = {name for name, value in (("mmi", mmi), ("min_words", min_words)) if value is not None}
        temperature = default.temperature if temperature is None else temperature
        mmi = default.mmi if mmi is None else mmi
        min_words = default.min_words if min_words is None else min_words
        samples = default.samples if samples is None else samples
        validate_chat_options(temperature, top_k, top_p, beam, max_length, context_turns, mmi, min_words, samples)
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.default_context_turns: int = self.model.config.context_turns
        self.context_turns: int = self.default_context_turns if context_turns is None else context_turns
        self.temperature = temperature
        self.top_k = top_k
        self.top_p = top_p
        self.beam = beam
        self.max_length = max_length
        self.mmi = mmi
        self.mmi_tokens = default.mmi_tokens
        self.min_words = min_words
        self.samples = samples  # sampling: replies drawn, the best by the rerank score said
        self.seed = seed
        self.repetition_guard = True
        self.history: list[str] = []
        self.candidates: list[Candidate] = []  # what the last reply was chosen from, best first
        self.generator = torch.Generator(device=loaded.device)
        if seed is not None:
            self.generator.manual_seed(seed)
        else:
            self.generator.seed()

    def context_in_use(self) -> list[str]:
        """The earlier turns the next reply will read, besides the new message (oldest first)."""
        k = self.context_turns - 1
        return list(self.history[-k:]) if k > 0 else []

    def set_beam(self, beam: int) -> None:
        """Beam search of this width (0: sampling). Switching between sampling and beam search also
        switches the anti-LM weight and minimum length to that decoding's measured guards, unless the
        user set them (``set_guard`` or the constructor)."""
        if (beam > 0) != (self.beam > 0):
            guards = default_decoding(self.max_length, beam)
            for name in ("mmi", "min_words"):
                if name not in self.pinned:
                    setattr(self, name, getattr(guards, name))
        self.beam = beam

    def set_guard(self, name: str, value: float) -> None:
        """The anti-LM weight (``mmi``) or minimum words (``min_words``) as the user chose it: kept from now on."""
        setattr(self, name, value)
        self.pinned.add(name)

    def reset(self) -> None:
        self.history.clear()
        if self.seed is not None:
            self.generator.manual_seed(self.seed)

    def decoding(self) -> Decoding:
        """The session's settings as one ``Decoding``, checked."""
        validate_chat_options(self.temperature, self.top_k, self.top_p, self.beam, self.max_length,
                              self.context_turns, self.mmi, self.min_words, self.samples)
        return Decoding(temperature=self.temperature, top_k=self.top_k, top_p=self.top_p, beam=self.beam,
                        mmi=self.mmi, mmi_tokens=self.mmi_tokens, min_words=self.min_words,
                        max_length=self.max_length, repetition_guard=self.repetition_guard, samples=self.samples)

    def reply_stream(self, user_text: str) -> Iterator[str]:
        """Stream the reply to ``user_text``; both turns join the history when it ends (or is cut off)."""
        from charnn.text.dialogue import clean_turn

        decoding = self.decoding()
        user_text = clean_turn(user_text)
        turns = [*self.context_in_use(), user_text] if self.context_turns > 0 else []
        pieces: list[str] = []
        self.candidates = []
        try:
            for piece in generate_reply(
                self.model, self.tokenizer, turns, context_turns=self.context_turns, decoding=decoding,
                generator=self.generator, device=self.loaded.device, candidates=self.candidates,
            ):
                pieces.append(piece)
                yield piece
        finally:
            self.history.extend([user_text, clean_turn("".join(pieces))])

    def reply(self, user_text: str) -> str:
        return "".join(self.reply_stream(user_text))

    def describe(self) -> str:
        return self.decoding().describe()


def format_candidates(candidates: list[Candidate], limit: int = 10) -> list[str]:
    """The N-best of the last reply, best first: rank score, log p given the context, log p of the first
    tokens given none (the anti-LM term), words and text."""
    lines = [f"{'#':>2} {'score':>7} {'log p':>7} {'prior':>7} {'words':>5}  reply"]
    for i, c in enumerate(candidates[:limit], start=1):
        lines.append(f"{i:>2} {c.score:>7.2f} {c.logp:>7.2f} {c.prior:>7.2f} {c.words:>5}  {c.text or '(empty)'}")
    return lines


# -- the REPL --------------------------------------------------------------------------

HELP = """commands:
  /reset        forget the conversation
  /temp X       sampling temperature (0 = greedy)
  /context N    how many previous turns the model reads (the model's default: {default})
  /beam N       beam search with N beams (0 = sample); a beam brings its own /mmi and /min unless you set them
  /mmi X        anti-LM weight: take X * log p(reply | no context) off each reply's first tokens (0 = off)
  /min N        no reply shorter than N words (0 = off)
  /samples N    sampling: draw N replies and say the one the model scores best (1 = the first, streamed)
  /nbest        the candidates the last reply was chosen from, with their scores
  /settings     the decoding in use
  /help         this help
  /quit         leave (or Ctrl-D)"""


def _command(session: ChatSession, line: str, err) -> bool:
    """Run a /command; False means quit."""
    name, _, arg = line[1:].strip().partition(" ")
    name, arg = name.lower(), arg.strip()
    try:
        if name in ("quit", "exit", "q"):
            return False
        if name == "help":
            err.write(HELP.format(default=session.default_context_turns) + "\n")
        elif name == "reset":
            session.reset()
            err.write("(conversation cleared)\n")
        elif name in ("temp", "temperature"):
            value = float(arg)
            validate_chat_options(value, 0, 1.0, 0, 1, None)
            session.set_beam(0)  # a temperature asks for sampling
            session.temperature = value
            err.write(f"({session.describe()})\n")
        elif name == "context":
            value = int(arg)
            validate_chat_options(0.0, 0, 1.0, 0, 1, value)
            session.context_turns = value
            err.write(f"(reading the last {value} turn{'s' if value != 1 else ''})\n")
        elif name == "beam":
            value = int(arg)
            validate_chat_options(0.0, 0, 1.0, value, 1, None)
            session.set_beam(value)
            err.write(f"({session.describe()})\n")
        elif name == "mmi":
            value = float(arg)
            validate_chat_options(0.0, 0, 1.0, 0, 1, None, mmi=value)
            session.set_guard("mmi", value)
            err.write(f"(anti-LM weight {value:g})\n")
        elif name == "min":
            value = int(arg)
            validate_chat_options(0.0, 0, 1.0, 0, 1, None, min_words=value)
            session.set_guard("min_words", value)
            err.write(f"(replies of at least {value} words)\n" if value else "(no minimum length)\n")
        elif name == "samples":
            value = int(arg)
            validate_chat_options(0.0, 0, 1.0, 0, 1, None, samples=value)
            session.samples = value
            err.write(f"({session.describe()})\n")
        elif name == "nbest":
            err.write("\n".join(format_candidates(session.candidates)) + "\n" if session.candidates
                      else "(no reply yet)\n")
        elif name == "settings":
            err.write(f"({session.describe()})\n")
        else:
            err.write(f"unknown command /{name}; /help lists them\n")
    except ValueError:
        err.write(f"/{name} needs a number, e.g. /{name} {'0.5' if name in ('temp', 'mmi') else '3'}\n")
    except CharnnError as e:
        err.write(f"{e}\n")
    err.flush()
    return True


def run_chat_repl(args) -> int:
    """``charnn chat``: read lines, answer each; works with a terminal or piped input."""
    from charnn.runtime.device import set_cpu_threads
    from charnn.runtime.loading import load_model

    default = default_decoding(args.max_length, args.beam)
    validate_chat_options(default.temperature if args.temp is None else args.temp, args.top_k, args.top_p,
                          args.beam or 0, args.max_length, args.context,
                          default.mmi if args.mmi is None else args.mmi,
                          default.min_words if args.min_length is None else args.min_length,
                          default.samples if args.samples is None else args.samples)
    set_cpu_threads()
    loaded = load_model(args.checkpoint, "chat", args.device)
    session = ChatSession(loaded, context_turns=args.context, temperature=args.temp, top_k=args.top_k,
                          top_p=args.top_p, beam=args.beam, max_length=args.max_length, seed=args.seed,
                          mmi=args.mmi, min_words=args.min_length, samples=args.samples)
    out, err = sys.stdout, sys.stderr
    interactive = sys.stdin.isatty()
    if interactive:
        params = sum(p.numel() for p in loaded.model.parameters())
        err.write(f"chat model {loaded.path} ({params:,} parameters, reads the last "
                  f"{session.context_turns} turns; {session.describe()}). Type /help for commands, /quit to leave.\n")
    while True:
        try:
            line = input("you> ") if interactive else sys.stdin.readline()
        except (EOFError, KeyboardInterrupt):  # Ctrl-D or Ctrl-C at the prompt: leave quietly
            break
        if not interactive and not line:
            break
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            if not _command(session, line, err):
                break
            continue
        if interactive:
            out.write("bot> ")
        try:
            for piece in session.reply_stream(line):
                out.write(piece)
                out.flush()
        except KeyboardInterrupt:
            out.write(" [interrupted]")
        out.write("\n")
        out.flush()
    if interactive:
        err.write("\n")
    return 0
