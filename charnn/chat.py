"""Chatting with a seq2seq model: decoding, the conversation engine, the REPL and evaluation.

``generate_reply`` turns the recent turns into a reply, streamed as text
pieces: greedy (temperature 0), sampled (temperature, top-k, top-p, via
``charnn.sampling``) or beam search with length normalisation; all stop at
<eos> or the maximum length, and a repetition guard forbids repeating a
long-enough run of tokens within one reply (the usual failure of small
chat models: "i am good i am good i am good ...").

``ChatSession`` keeps the conversation; the ``charnn chat`` REPL and the TUI's
Chat screen both drive it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from charnn.errors import CharnnError

if TYPE_CHECKING:
    import torch

    from charnn.runtime.loading import LoadedModel
    from charnn.text.tokenizers import Tokenizer

REPEAT_CHARS = 24  # the guard forbids repeating any run of this many characters within a reply
LENGTH_PENALTY = 0.7  # beam scores are divided by ((5 + length) / 6) ** this (Wu et al. 2016)


def repeat_ngram(tokenizer: Tokenizer) -> int:
    """The guarded run length in tokens: about REPEAT_CHARS characters."""
    if tokenizer.kind == "char":
        return REPEAT_CHARS
    return max(4, REPEAT_CHARS // 3)


class RepetitionGuard:
    """Bans any token that would repeat an n-gram already in the sequence (no-repeat-ngram)."""

    def __init__(self, n: int):
        self.n = n
        self.seen: dict[tuple[int, ...], set[int]] = {}
        self.tokens: list[int] = []

    def add(self, token: int) -> None:
        self.tokens.append(token)
        if self.n and len(self.tokens) >= self.n:
            gram = self.tokens[-self.n :]
            self.seen.setdefault(tuple(gram[:-1]), set()).add(gram[-1])

    def banned(self) -> set[int]:
        if not self.n or len(self.tokens) < self.n - 1:
            return set()
        return self.seen.get(tuple(self.tokens[len(self.tokens) - self.n + 1 :]), set())

    def copy(self) -> RepetitionGuard:
        other = RepetitionGuard(self.n)
        other.seen = {k: set(v) for k, v in self.seen.items()}
        other.tokens = list(self.tokens)
        return other


def encode_context(model, tokenizer: Tokenizer, turns: Sequence[str], context_turns: int | None, device):
    """The encoder's memory for the last ``context_turns`` turns (the model's default when None)."""
    import torch

    from charnn.models.seq2seq import context_ids
    from charnn.training.chat_task import encode_turn

    cfg = model.config
    k = cfg.context_turns if context_turns is None else context_turns
    kept = list(turns)[-k:] if k > 0 else []
    ids = context_ids([encode_turn(tokenizer, t).tolist() for t in kept], cfg, max_turns=k)
    x = torch.tensor([ids], dtype=torch.long, device=device)
    return model.encode(x, torch.tensor([len(ids)], device=device))


def sample_ids(model, memory, max_length: int, temperature: float = 0.8, top_k: int = 0, top_p: float = 1.0,
               generator: torch.Generator | None = None, guard: RepetitionGuard | None = None) -> Iterator[int]:
    """Reply ids one at a time (temperature 0: greedy), stopping before <eos>."""
    import torch

    from charnn.sampling import next_token

    cfg = model.config
    device = memory.values.device
    tok = torch.tensor([[cfg.bos_id]], device=device)
    state = None
    for _ in range(max_length):
        logits, state = model.decode(memory, tok, state)
        last = logits[:, -1, :].float()
        last[:, [cfg.pad_id, cfg.bos_id, cfg.sep_id]] = float("-inf")
        if guard is not None:
            banned = guard.banned() - {cfg.eos_id}
            if banned:
                last[:, list(banned)] = float("-inf")
        nxt = int(next_token(last, temperature, top_k, top_p, generator).item())
        if nxt == cfg.eos_id:
            return
        if guard is not None:
            guard.add(nxt)
        yield nxt
        tok = torch.tensor([[nxt]], device=device)


def beam_search(model, memory, beam: int, max_length: int, repeat_n: int = 0,
                length_penalty: float = LENGTH_PENALTY) -> list[int]:
    """The best reply by beam search, scores normalised by length; ends at <eos> or ``max_length``."""
    import torch

    cfg = model.config
    device = memory.values.device
    alive: list[tuple[list[int], float, RepetitionGuard]] = [([], 0.0, RepetitionGuard(repeat_n))]
    finished: list[tuple[float, list[int]]] = []
    mem = memory
    state = None
    tok = torch.tensor([[cfg.bos_id]], device=device)

    def norm(logp: float, length: int) -> float:
        return logp / (((5.0 + length) / 6.0) ** length_penalty)

    for step in range(max_length + 1):
        logits, state = model.decode(mem, tok, state)
        logp = torch.log_softmax(logits[:, -1, :].float(), dim=-1)
        logp[:, [cfg.pad_id, cfg.bos_id, cfg.sep_id]] = float("-inf")
        if step == max_length:  # out of room: every hypothesis must end here
            keep = logp[:, cfg.eos_id].clone()
            logp.fill_(float("-inf"))
            logp[:, cfg.eos_id] = keep
        for row, (_, _, guard) in enumerate(alive):
            banned = guard.banned() - {cfg.eos_id}
            if banned:
                logp[row, list(banned)] = float("-inf")
        total = logp + torch.tensor([score for _, score, _ in alive], device=device).unsqueeze(1)
        flat = total.view(-1)
        k = min(2 * beam, int(torch.isfinite(flat).sum()))
        if k == 0:
            break
        top = torch.topk(flat, k)
        vocab = logp.size(-1)
        candidates = []
        for rank, (score, index) in enumerate(zip(top.values.tolist(), top.indices.tolist(), strict=True)):
            row, token = divmod(index, vocab)
            if token == cfg.eos_id:
                if rank < beam:  # an ending ranked below the beam would not have been kept
                    finished.append((norm(score, len(alive[row][0]) + 1), alive[row][0]))
            elif len(candidates) < beam:
                candidates.append((row, token, score))
        if len(finished) >= beam or not candidates:
            break
        rows = torch.tensor([row for row, _, _ in candidates], device=device)
        new_alive = []
        for row, token, score in candidates:
            guard = alive[row][2].copy()
            guard.add(token)
            new_alive.append((alive[row][0] + [token], score, guard))
        alive = new_alive
        mem = memory.select(torch.zeros(len(alive), dtype=torch.long, device=device))
        state = (state[0][:, rows], state[1][:, rows])
        tok = torch.tensor([[t] for _, t, _ in candidates], device=device)
    if not finished:
        finished = [(norm(score, len(ids)), ids) for ids, score, _ in alive]
    return max(finished, key=lambda f: f[0])[1]


def generate_reply(model, tokenizer: Tokenizer, turns: Sequence[str], *, context_turns: int | None = None,
                   max_length: int = 200, temperature: float = 0.8, top_k: int = 0, top_p: float = 1.0,
                   beam: int = 0, generator: torch.Generator | None = None, device=None,
                   repetition_guard: bool = True) -> Iterator[str]:
    """The reply to the conversation ``turns`` (oldest first, the user's last), streamed as text pieces."""
    import torch

    from charnn.sampling import stream_text

    device = device if device is not None else next(model.parameters()).device
    with torch.inference_mode():
        memory = encode_context(model, tokenizer, turns, context_turns, device)
        n = repeat_ngram(tokenizer) if repetition_guard else 0
        if beam and beam > 0:
            ids: Iterator[int] = iter(beam_search(model, memory, beam, max_length, n))
        else:
            ids = sample_ids(model, memory, max_length, temperature, top_k, top_p, generator,
                             RepetitionGuard(n) if n else None)
        yield from stream_text(ids, tokenizer)


def validate_chat_options(temperature: float, top_k: int, top_p: float, beam: int, max_length: int,
                          context_turns: int | None) -> None:
    if temperature < 0:
        raise CharnnError("--temp must be 0 or more (0 always picks the most likely token).")
    if top_k < 0:
        raise CharnnError("--top-k must be 0 (off) or a positive number.")
    if not 0.0 < top_p <= 1.0:
        raise CharnnError("--top-p must be in (0, 1].")
    if beam < 0 or beam > 64:
        raise CharnnError("--beam must be between 0 (sample) and 64.")
    if max_length < 1 or max_length > 10_000:
        raise CharnnError("--max-length must be between 1 and 10,000.")
    if context_turns is not None and not 0 <= context_turns <= 64:
        raise CharnnError("--context must be between 0 and 64 turns.")


class ChatSession:
    """A conversation with a chat model. Settings are plain attributes; change them between replies."""

    def __init__(self, loaded: LoadedModel, context_turns: int | None = None, temperature: float = 0.8,
                 top_k: int = 0, top_p: float = 1.0, beam: int = 0, max_length: int = 200,
                 seed: int | None = None):
        import torch

        if loaded.kind != "chat":
            raise CharnnError(f"{loaded.path} is a language model, not a chat model; use it with charnn generate.")
        validate_chat_options(temperature, top_k, top_p, beam, max_length, context_turns)
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
        self.seed = seed
        self.repetition_guard = True
        self.history: list[str] = []
        self.generator = torch.Generator(device=loaded.device)
        if seed is not None:
            self.generator.manual_seed(seed)
        else:
            self.generator.seed()

    def context_in_use(self) -> list[str]:
        """The earlier turns the next reply will read, besides the new message (oldest first)."""
        k = self.context_turns - 1
        return list(self.history[-k:]) if k > 0 else []

    def reset(self) -> None:
        self.history.clear()
        if self.seed is not None:
            self.generator.manual_seed(self.seed)

    def reply_stream(self, user_text: str) -> Iterator[str]:
        """Stream the reply to ``user_text``; both turns join the history when it ends (or is cut off)."""
        from charnn.text.dialogue import clean_turn

        validate_chat_options(self.temperature, self.top_k, self.top_p, self.beam, self.max_length,
                              self.context_turns)
        user_text = clean_turn(user_text)
        turns = [*self.context_in_use(), user_text] if self.context_turns > 0 else []
        pieces: list[str] = []
        try:
            for piece in generate_reply(
                self.model, self.tokenizer, turns, context_turns=self.context_turns,
                max_length=self.max_length, temperature=self.temperature, top_k=self.top_k,
                top_p=self.top_p, beam=self.beam, generator=self.generator, device=self.loaded.device,
                repetition_guard=self.repetition_guard,
            ):
                pieces.append(piece)
                yield piece
        finally:
            self.history.extend([user_text, clean_turn("".join(pieces))])

    def reply(self, user_text: str) -> str:
        return "".join(self.reply_stream(user_text))


# -- the REPL --------------------------------------------------------------------------

HELP = """commands:
  /reset        forget the conversation
  /temp X       sampling temperature (0 = greedy)
  /context N    how many previous turns the model reads (the model's default: {default})
  /beam N       beam search with N beams (0 = sample)
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
            session.temperature = value
            err.write(f"(temperature {value:g})\n")
        elif name == "context":
            value = int(arg)
            validate_chat_options(0.0, 0, 1.0, 0, 1, value)
            session.context_turns = value
            err.write(f"(reading the last {value} turn{'s' if value != 1 else ''})\n")
        elif name == "beam":
            value = int(arg)
            validate_chat_options(0.0, 0, 1.0, value, 1, None)
            session.beam = value
            err.write(f"(beam search, {value} beams)\n" if value else "(sampling)\n")
        else:
            err.write(f"unknown command /{name}; /help lists them\n")
    except ValueError:
        err.write(f"/{name} needs a number, e.g. /{name} {'0.7' if name.startswith('temp') else '3'}\n")
    except CharnnError as e:
        err.write(f"{e}\n")
    err.flush()
    return True


def run_chat_repl(args) -> int:
    """``charnn chat``: read lines, answer each; works with a terminal or piped input."""
    from charnn.runtime.device import set_cpu_threads
    from charnn.runtime.loading import load_model

    validate_chat_options(args.temp, args.top_k, args.top_p, args.beam, args.max_length, args.context)
    set_cpu_threads()
    loaded = load_model(args.checkpoint, "chat", args.device)
    session = ChatSession(loaded, context_turns=args.context, temperature=args.temp, top_k=args.top_k,
                          top_p=args.top_p, beam=args.beam, max_length=args.max_length, seed=args.seed)
    out, err = sys.stdout, sys.stderr
    interactive = sys.stdin.isatty()
    if interactive:
        params = sum(p.numel() for p in loaded.model.parameters())
        err.write(f"chat model {loaded.path} ({params:,} parameters, reads the last "
                  f"{session.context_turns} turns). Type /help for commands, /quit to leave.\n")
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


# -- evaluation ------------------------------------------------------------------------

EVAL_CHARS = 200_000  # reply characters scored by default (a couple of thousand replies)
N_SAMPLED = 100  # replies sampled for distinct-1/2
N_EXAMPLES = 5


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct word n-grams over all n-grams of ``texts`` (Li et al. 2016)."""
    grams, total = set(), 0
    for text in texts:
        words = text.split()
        for i in range(len(words) - n + 1):
            grams.add(tuple(words[i : i + n]))
            total += 1
    return len(grams) / total if total else 0.0


def evaluate_chat_file(path, text_path, device: str = "auto", encoding: str = "utf-8", errors: str = "strict",
                       max_tokens: int = 0, seed: int = 0) -> dict:
    """Held-out reply bits/char with the model's context, with only the last turn, and with none;
    distinct-1/2 of sampled replies; a few example exchanges.

    When ``text_path`` is the file the model was trained on, only its held-out conversations are scored.
    """
    import dataclasses

    import numpy as np
    import torch

    from charnn.runtime.device import set_cpu_threads
    from charnn.runtime.loading import load_model
    from charnn.text.corpus import check_readable, hash_file
    from charnn.text.dialogue import read_dialogues, split_conversations
    from charnn.training.chat_task import (
        EVAL_REPLY_TOKENS,
        DialogueExamples,
        format_exchange,
        reply_losses,
        score_examples,
    )

    set_cpu_threads()
    loaded = load_model(path, "chat", device)
    model, tok, dev = loaded.model, loaded.tokenizer, loaded.device
    cfg = model.config
    conversations = read_dialogues(text_path, encoding, errors)
    ck = loaded.checkpoint
    scored = "the whole file"
    if hash_file(check_readable(text_path)).sha256 == ck.get("corpus", {}).get("corpus_sha256"):
        fraction = ck.get("settings", {}).get("train", {}).get("val_fraction", 0.1)
        conversations = split_conversations(conversations, fraction)[1]
        scored = f"the held-out {fraction:.0%} of the training conversations"
    budget = max_tokens or EVAL_CHARS  # for chat models counted in reply characters
    with_ctx = DialogueExamples(conversations, tok, cfg, EVAL_REPLY_TOKENS)
    last_only = DialogueExamples(conversations, tok, dataclasses.replace(cfg, context_turns=1), EVAL_REPLY_TOKENS)
    subset, nats_ctx, tokens = reply_losses(model, with_ctx, dev, budget)
    _, nats_none, _ = reply_losses(model, with_ctx, dev, budget, drop_context=True)
    _, bpc_last = score_examples(model, last_only, dev, budget)
    chars = float(with_ctx.chars[subset].sum())
    bpc, bpc_none = (float(n.sum()) / math.log(2) / max(chars, 1e-9) for n in (nats_ctx, nats_none))

    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    # sampled replies to held-out contexts, spread over the file
    picks = np.linspace(0, len(with_ctx) - 1, num=min(N_SAMPLED, len(with_ctx))).astype(int)
    replies, exchanges = [], []
    for i in picks:
        turns = [tok.decode(t.tolist()) for t in with_ctx.context_of(int(i))]
        reply = "".join(generate_reply(model, tok, turns, max_length=cfg.max_reply_tokens, temperature=0.8,
                                       generator=gen, device=dev)).strip()
        replies.append(reply)
        if turns and len(exchanges) < N_EXAMPLES:
            real = tok.decode(with_ctx.reply_ids(int(i)).tolist())
            real = real if len(real) <= 100 else real[:100] + "…"
            exchanges.append(f"{format_exchange(turns, reply)}   (real reply: {real})")
    result = {
        "checkpoint": str(loaded.path),
        "scored": scored,
        "replies": len(subset),
        "context_turns": cfg.context_turns,
        "loss_nats_per_token": float(nats_ctx.sum()) / max(int(tokens.sum()), 1),
        "bits_per_char": bpc,
        "bits_per_char_last_turn_only": bpc_last,
        "bits_per_char_without_context": bpc_none,
        "context_gain_bits_per_char": bpc_none - bpc,
        # paired per reply: how many held-out replies the context makes more likely
        "replies_more_likely_with_context": float((nats_ctx < nats_none).mean()) if len(subset) else 0.0,
        "distinct_1": distinct_n(replies, 1),
        "distinct_2": distinct_n(replies, 2),
    }
    for j, text in enumerate(exchanges, start=1):
        result[f"example_{j}"] = text
    return result
