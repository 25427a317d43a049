"""Decoding a chat model's reply: sampled, greedy or beam search, with a repetition guard.

``generate_reply`` turns the recent turns into a reply, streamed as text
pieces: greedy (temperature 0), sampled (temperature, top-k, top-p, via
``charnn.decoding.sampling``) or beam search with length normalisation; all
stop at <eos> or the maximum length, and a repetition guard forbids repeating
a long-enough run of tokens within one reply (the usual failure of small chat
models: "i am good i am good i am good ...").
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from charnn.decoding.sampling import next_token, stream_text, validate_sampling
from charnn.errors import CharnnError

if TYPE_CHECKING:
    import torch

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
    from charnn.text.chat_batches import encode_turn

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
    """Refuse settings no reply can be decoded with, in the words of ``charnn chat``'s flags."""
    validate_sampling(temperature, top_k, top_p)
    if beam < 0 or beam > 64:
        raise CharnnError("--beam must be between 0 (sample) and 64.")
    if max_length < 1 or max_length > 10_000:
        raise CharnnError("--max-length must be between 1 and 10,000.")
    if context_turns is not None and not 0 <= context_turns <= 64:
        raise CharnnError("--context must be between 0 and 64 turns.")


def format_exchange(turns: Sequence[str], reply: str, width: int = 80) -> str:
    """'… earlier turn / last turn -> reply' on one line, long turns shortened from the left."""
    shown = [t if len(t) <= width else "…" + t[-width:] for t in turns] or ["(no context)"]
    return " / ".join(shown) + " -> " + reply
