"""Decoding a chat model's reply: sampled, greedy or beam search, with guards against dull replies.

``generate_reply`` turns the recent turns into a reply, streamed as text
pieces: greedy (temperature 0), sampled (temperature, top-k, top-p, via
``charnn.decoding.sampling``) or beam search with length normalisation; all
stop at <eos> or the maximum length. Small chat models fall into three
ruts, each with its guard here:

* repeating themselves ("i am good i am good ..."): a no-repeat-n-gram guard;
* the reply prior ("Hi!" to anything; the decoder learns what replies look like
  and beam search finds its peak): MMI-antiLM (Li et al. 2016), each of the first
  ``mmi_tokens`` tokens scored log p(t | context) - mmi * log p(t | no context), the
  second term from the same decoder given an empty context, except a token that goes
  on with a word (the anti-LM chooses words; the model alone spells them); beam N-best
  lists are reranked by that score, length and repetition;
* stopping at once: a minimum reply length in words (<eos> is forbidden before it).

Sampling may draw several replies and say the one the rerank scores best (``Decoding.samples``;
sample-and-rank, Adiwardana et al. 2020): one draw often garbles a word, the best of eight rarely does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from charnn.decoding.sampling import next_token, stream_text, validate_sampling
from charnn.errors import CharnnError

if TYPE_CHECKING:
    import torch

    from charnn.text.tokenizers import Tokenizer

REPEAT_CHARS = 24  # the guard forbids repeating any run of this many characters within a reply
LENGTH_PENALTY = 0.7  # beam scores are divided by ((5 + length) / 6) ** this (Wu et al. 2016)
MMI_TOKENS = 5  # the anti-LM term counts over a reply's first this many tokens (Li et al.'s gamma)
# the anti-LM only reorders tokens at least this likely relative to the likeliest: unchecked, it promotes
# subword fragments that never start a reply ("aybe") because their context-free probability is tiny
MMI_FLOOR = 0.02


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


@dataclass
class Decoding:
    """How a reply is decoded: sampled (``beam`` 0; temperature 0 is greedy) or by beam search,
    with the anti-LM weight ``mmi``, a minimum length in words and the rerank terms of the N-best."""

    temperature: float = 0.8
    top_k: int = 0
    top_p: float = 1.0
    beam: int = 0
    mmi: float = 0.0  # lambda: how much of log p(reply | no context) is taken off
    mmi_tokens: int = MMI_TOKENS
    mmi_floor: float = MMI_FLOOR
    min_words: int = 0  # <eos> is forbidden until the reply has this many words
    max_length: int = 200
    repetition_guard: bool = True
    length_bonus: float = 0.0  # rerank: added per word of the reply, up to LONG_REPLY words
    samples: int = 1  # sampling: draw this many replies and keep the best by the rerank score (sample-and-rank)
    repeat_penalty: float = 0.0  # rerank: taken off per word that repeats an earlier one

    def describe(self) -> str:
        how = f"beam {self.beam}" if self.beam else ("greedy" if self.temperature <= 0 else
                                                   f"sampling temp {self.temperature:g}")
        if not self.beam and self.samples > 1 and self.temperature > 0:
            how += f", best of {self.samples}"
        extras = [f"mmi {self.mmi:g}" if self.mmi else "", f"min {self.min_words} words" if self.min_words else ""]
        return " · ".join([how, *(e for e in extras if e)])


LONG_REPLY = 12  # the rerank's length bonus stops growing at this many words


def default_decoding(max_length: int = 200, beam: int | None = None) -> Decoding:
    """``charnn chat``'s decoding, chosen on measured figures (benchmarks/README.md, "Chat decoding"); given a
    beam width (0: sampling), that decoding with its own guards (``presets.CHAT_BEAM_GUARDS`` or
    ``CHAT_SAMPLING_GUARDS``)."""
    from charnn.presets import CHAT_BEAM_GUARDS, CHAT_DECODING, CHAT_SAMPLING_GUARDS

    beam = CHAT_DECODING["beam"] if beam is None else beam
    guards = CHAT_BEAM_GUARDS if beam > 0 else CHAT_SAMPLING_GUARDS
    return Decoding(max_length=max_length, **{**CHAT_DECODING, "beam": beam}, **guards)


def standard_decodings(max_length: int = 200) -> dict[str, Decoding]:
    """The decodings every chat evaluation compares, the default (sampling with its guards) first, then
    beam 5 as `charnn chat --beam 5` decodes it, and plain sampling and plain beam 5 without guards."""
    return {"default": default_decoding(max_length), "beam 5": default_decoding(max_length, beam=5),
            "plain sampling": Decoding(temperature=0.8, max_length=max_length),
            "plain beam 5": Decoding(beam=5, max_length=max_length)}


@dataclass
class Candidate:
    """One decoded reply and its scores (nats): log p(reply | context), log p(first tokens | no context)."""

    ids: list[int]
    logp: float
    prior: float = 0.0
    ended: bool = True  # closed by <eos> (else cut at the maximum length)
    words: int = 0
    score: float = 0.0  # what the N-best is ranked by (higher is better)
    text: str = ""
    extra: dict = field(default_factory=dict)


class WordCounter:
    """Words (runs of non-space characters) in a growing reply, from each token's text."""

    def __init__(self, tokenizer: Tokenizer):
        texts = [b.decode("utf-8", errors="ignore") for b in tokenizer.token_bytes]
        self.after_space = [self._starts(t, True) for t in texts]
        self.after_word = [self._starts(t, False) for t in texts]
        self.ends_space = [None if not t else t[-1].isspace() for t in texts]
        # a token that goes on with the word before it, unless the reply so far ends in a space (or is empty)
        self.joins = [bool(t) and not t[0].isspace() for t in texts]
        self._joins_tensor = None

    def inside_words(self, spaces: Sequence[bool], device) -> torch.Tensor:
        """B x V: True where a token would go on with the word a row's reply ends in (``spaces``: whether
        each row's reply so far ends in a space or is empty)."""
        import torch

        if self._joins_tensor is None or self._joins_tensor.device != torch.device(device):
            self._joins_tensor = torch.tensor(self.joins, dtype=torch.bool, device=device)
        mid = torch.tensor([not s for s in spaces], dtype=torch.bool, device=device)
        return mid.unsqueeze(1) & self._joins_tensor.unsqueeze(0)

    @staticmethod
    def _starts(text: str, after_space: bool) -> int:
        count, space = 0, after_space
        for ch in text:
            if not ch.isspace() and space:
                count += 1
            space = ch.isspace()
        return count

    def step(self, state: tuple[int, bool], token: int) -> tuple[int, bool]:
        """(words so far, last character a space) after ``token``; start from (0, True)."""
        words, space = state
        words += self.after_space[token] if space else self.after_word[token]
        ends = self.ends_space[token]
        return words, space if ends is None else ends


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


class PriorStep:
    """log p(next token | no context) beside the real decoder, for the anti-LM term: the same decoder
    reading an empty context (a lone <sep>, as training's context-free replies)."""

    def __init__(self, model, device):
        self.model = model
        self.memory = encode_context(model, None, [], 0, device)
        self.state = None

    def __call__(self, tokens, rows=None):
        """Log-probabilities (B x V) after ``tokens`` (B x 1); ``rows`` picks the surviving beams first."""
        import torch

        if rows is not None and self.state is not None:
            self.state = (self.state[0][:, rows], self.state[1][:, rows])
        mem = self.memory.select(torch.zeros(tokens.size(0), dtype=torch.long, device=tokens.device))
        logits, self.state = self.model.decode(mem, tokens, self.state)
        return torch.log_softmax(logits[:, -1, :].float(), dim=-1)


def anti_lm(logp, prior, mmi: float, floor: float, inside=None):
    """log p(t | context) - mmi * log p(t | no context) for the plausible tokens (within ``floor`` of the
    likeliest, per row), -inf for the rest; a floor of 0 keeps every token. A token the guards forbid
    comes in as -inf, so the floor is relative to the likeliest token that may follow (else a row whose
    likeliest is a forbidden <eos> could keep nothing and stop unfinished). Where ``inside`` (B x V) is
    True, a token that goes on with a word is scored by log p(t | context) alone: the anti-LM picks
    words, not the pieces that finish them (unchecked, it spells "hi" as "hisgas": a continuation never
    seen without the context looks like a reply about it)."""
    import math

    import torch

    scores = logp - mmi * prior
    if inside is not None:
        scores = torch.where(inside, logp, scores)
    if floor > 0:
        cut = logp.max(dim=-1, keepdim=True).values + math.log(floor)
        scores = torch.where(logp >= cut, scores, torch.full_like(scores, float("-inf")))
    return scores


def _masked_logp(model, memory, tok, state):
    import torch

    cfg = model.config
    logits, state = model.decode(memory, tok, state)
    logp = torch.log_softmax(logits[:, -1, :].float(), dim=-1)
    logp[:, [cfg.pad_id, cfg.bos_id, cfg.sep_id]] = float("-inf")
    return logp, state


def _guarded(logp, guards, counts, words: WordCounter | None, min_words: int, eos_id: int, may_stop_short: bool = False):
    """A copy of ``logp`` (B x V) with what each row's guards forbid at -inf: a token that would repeat
    (its ``guards``, None: none) and <eos> before ``min_words`` words (``counts``), unless ``may_stop_short``."""
    scores = logp.clone()
    for row, (guard, count) in enumerate(zip(guards, counts, strict=True)):
        if guard is not None and (banned := guard.banned() - {eos_id}):
            scores[row, list(banned)] = float("-inf")
        if words is not None and count[0] < min_words and not may_stop_short:
            scores[row, eos_id] = float("-inf")
    return scores


def _prior_term(p, inside, row: int, token: int) -> float:
    """What ``token`` adds to row ``row``'s anti-LM prior: its log p with no context, or nothing when the
    anti-LM did not score it (no prior at this step, or the token goes on with a word)."""
    if p is None or (inside is not None and bool(inside[row, token])):
        return 0.0
    return float(p[row, token])


def sample_ids(model, memory, max_length: int, temperature: float = 0.8, top_k: int = 0, top_p: float = 1.0,
               generator: torch.Generator | None = None, guard: RepetitionGuard | None = None, *,
               mmi: float = 0.0, mmi_tokens: int = MMI_TOKENS, min_words: int = 0,
               words: WordCounter | None = None, found: list[Candidate] | None = None,
               mmi_floor: float = MMI_FLOOR) -> Iterator[int]:
    """Reply ids one at a time (temperature 0: greedy), stopping before <eos>; the finished reply is
    appended to ``found`` as a ``Candidate``. With ``mmi``, the first ``mmi_tokens`` draws are from
    log p(t | context) - mmi * log p(t | no context)."""
    for (token,) in sample_rows(model, memory, 1, max_length, temperature, top_k, top_p, generator,
                                None if guard is None else [guard], mmi=mmi, mmi_tokens=mmi_tokens,
                                min_words=min_words, words=words, found=found, mmi_floor=mmi_floor):
        if token is None:
            return
        yield token


def sample_rows(model, memory, n: int, max_length: int, temperature: float = 0.8, top_k: int = 0,
                top_p: float = 1.0, generator: torch.Generator | None = None,
                guards: list[RepetitionGuard] | None = None, *, mmi: float = 0.0, mmi_tokens: int = MMI_TOKENS,
                min_words: int = 0, words: WordCounter | None = None, found: list[Candidate] | None = None,
                mmi_floor: float = MMI_FLOOR) -> Iterator[list[int | None]]:
    """``n`` replies drawn side by side in one batch (``sample_ids`` is one of them): each step yields the
    rows' new ids, None for a row that has ended; the finished replies are appended to ``found``."""
    import torch

    cfg = model.config
    device = memory.values.device
    mem = memory.select(torch.zeros(n, dtype=torch.long, device=device)) if n > 1 else memory
    tok = torch.full((n, 1), cfg.bos_id, device=device)
    prior = PriorStep(model, device) if mmi else None
    state = None
    ids: list[list[int]] = [[] for _ in range(n)]
    logp_sum, prior_sum = [0.0] * n, [0.0] * n
    counts, ended, done = [(0, True)] * n, [False] * n, [False] * n
    for step in range(max_length):
        logp, state = _masked_logp(model, mem, tok, state)
        # the guards first, so the anti-LM's floor is relative to what may follow
        scores = _guarded(logp, guards or [None] * n, counts, words, min_words, cfg.eos_id)
        p = inside = None
        if prior is not None and step < mmi_tokens:
            p = prior(tok)
            inside = words.inside_words([c[1] for c in counts], device) if words is not None else None
            scores = anti_lm(scores, p, mmi, mmi_floor, inside)
        for row in range(n):
            if not done[row] and not torch.isfinite(scores[row]).any():
                done[row] = True  # nothing may follow: the reply stops where it is
            if done[row]:
                scores[row] = 0.0  # any draw; it is not used
        if all(done):
            break
        drawn = next_token(scores, temperature, top_k, top_p, generator).tolist()
        said: list[int | None] = [None] * n
        for row, token in enumerate(drawn):
            if done[row]:
                continue
            logp_sum[row] += float(logp[row, token])
            prior_sum[row] += _prior_term(p, inside, row, token)
            if token == cfg.eos_id:
                ended[row] = done[row] = True
                continue
            if guards is not None:
                guards[row].add(token)
            if words is not None:
                counts[row] = words.step(counts[row], token)
            ids[row].append(token)
            said[row] = token
        if all(done):
            break
        yield said
        tok = torch.tensor([[t] for t in drawn], device=device)
    if found is not None:
        found.extend(Candidate(ids[row], logp_sum[row], prior_sum[row], ended[row], counts[row][0]) for row in range(n))


def _length_norm(length: int, length_penalty: float) -> float:
    return ((5.0 + length) / 6.0) ** length_penalty


@dataclass
class _Hypothesis:
    ids: list[int]
    logp: float
    prior: float
    guard: RepetitionGuard
    count: tuple[int, bool]

    def score(self, mmi: float) -> float:
        return self.logp - mmi * self.prior


def beam_candidates(model, memory, beam: int, max_length: int, repeat_n: int = 0,
                    length_penalty: float = LENGTH_PENALTY, *, mmi: float = 0.0, mmi_tokens: int = MMI_TOKENS,
                    min_words: int = 0, words: WordCounter | None = None,
                    mmi_floor: float = MMI_FLOOR) -> list[Candidate]:
    """The N-best of a beam search (unranked; see ``rerank``), each step scored by
    log p(t | context) - mmi * log p(t | no context) over the first ``mmi_tokens`` tokens."""
    import torch

    cfg = model.config
    device = memory.values.device
    alive = [_Hypothesis([], 0.0, 0.0, RepetitionGuard(repeat_n), (0, True))]
    finished: list[tuple[float, Candidate]] = []
    prior = PriorStep(model, device) if mmi else None
    state, rows = None, None
    tok = torch.tensor([[cfg.bos_id]], device=device)
    mem = memory
    for step in range(max_length + 1):
        logp, state = _masked_logp(model, mem, tok, state)
        # the guards first, so the anti-LM's floor is relative to what may follow
        scores = _guarded(logp, [h.guard for h in alive], [h.count for h in alive], words, min_words, cfg.eos_id,
                          may_stop_short=step == max_length)
        p = prior(tok, rows) if prior is not None and step < mmi_tokens else None
        inside = words.inside_words([h.count[1] for h in alive], device) if p is not None and words else None
        if p is not None:
            scores = anti_lm(scores, p, mmi, mmi_floor, inside)
        if step == max_length:  # out of room: every hypothesis must end here
            keep = scores[:, cfg.eos_id].clone()
            scores.fill_(float("-inf"))
            scores[:, cfg.eos_id] = keep
        total = scores + torch.tensor([h.score(mmi) for h in alive], device=device).unsqueeze(1)
        flat = total.view(-1)
        k = min(2 * beam, int(torch.isfinite(flat).sum()))
        if k == 0:
            break
        top = torch.topk(flat, k)
        vocab = logp.size(-1)
        chosen = []
        for rank, (value, index) in enumerate(zip(top.values.tolist(), top.indices.tolist(), strict=True)):
            row, token = divmod(index, vocab)
            h = alive[row]
            step_prior = _prior_term(p, inside, row, token)
            if token == cfg.eos_id:
                if rank < beam:  # an ending ranked below the beam would not have been kept
                    cand = Candidate(h.ids, h.logp + float(logp[row, token]), h.prior + step_prior, True, h.count[0])
                    finished.append((value / _length_norm(len(h.ids) + 1, length_penalty), cand))
            elif len(chosen) < beam:
                guard = h.guard.copy()
                guard.add(token)
                nxt = _Hypothesis(h.ids + [token], h.logp + float(logp[row, token]), h.prior + step_prior, guard,
                                  words.step(h.count, token) if words is not None else h.count)
                chosen.append((row, token, nxt))
        if len(finished) >= beam or not chosen:
            break
        rows = torch.tensor([row for row, _, _ in chosen], device=device)
        alive = [h for _, _, h in chosen]
        mem = memory.select(torch.zeros(len(alive), dtype=torch.long, device=device))
        state = (state[0][:, rows], state[1][:, rows])
        tok = torch.tensor([[t] for _, t, _ in chosen], device=device)
    if not finished:
        finished = [(h.score(mmi) / _length_norm(len(h.ids), length_penalty),
                     Candidate(h.ids, h.logp, h.prior, False, h.count[0])) for h in alive]
    for value, cand in finished:
        cand.extra["beam"] = value
    return [cand for _, cand in finished]


def beam_search(model, memory, beam: int, max_length: int, repeat_n: int = 0,
                length_penalty: float = LENGTH_PENALTY) -> list[int]:
    """The best reply by plain beam search, scores normalised by length; ends at <eos> or ``max_length``."""
    found = beam_candidates(model, memory, beam, max_length, repeat_n, length_penalty)
    return max(found, key=lambda c: c.extra["beam"]).ids


def rerank(candidates: list[Candidate], tokenizer: Tokenizer, decoding: Decoding,
           length_penalty: float = LENGTH_PENALTY) -> list[Candidate]:
    """The N-best, best first, by (log p(r|c) - mmi * log p(r|no context)) per normalised length,
    plus ``length_bonus`` per word and minus ``repeat_penalty`` per repeated word (Li et al. 2016)."""
    for c in candidates:
        c.text = tokenizer.decode(c.ids).strip()
        words = c.text.lower().split()
        c.words = len(words)
        base = (c.logp - decoding.mmi * c.prior) / _length_norm(len(c.ids) + c.ended, length_penalty)
        c.score = (base + decoding.length_bonus * min(len(words), LONG_REPLY)
                   - decoding.repeat_penalty * (len(words) - len(set(words))))
    return sorted(candidates, key=lambda c: c.score, reverse=True)


def reply_candidates(model, tokenizer: Tokenizer, turns: Sequence[str], decoding: Decoding, *,
                     context_turns: int | None = None, generator: torch.Generator | None = None,
                     device=None) -> list[Candidate]:
    """Every candidate reply ``decoding`` weighs for ``turns``, best first (sampling: the one drawn)."""
    found: list[Candidate] = []
    for _ in generate_reply(model, tokenizer, turns, context_turns=context_turns, decoding=decoding,
                            generator=generator, device=device, candidates=found):
        pass
    return found


def generate_reply(model, tokenizer: Tokenizer, turns: Sequence[str], *, context_turns: int | None = None,
                   max_length: int = 200, temperature: float = 0.8, top_k: int = 0, top_p: float = 1.0,
                   beam: int = 0, generator: torch.Generator | None = None, device=None,
                   repetition_guard: bool = True, decoding: Decoding | None = None,
                   candidates: list[Candidate] | None = None) -> Iterator[str]:
    """The reply to the conversation ``turns`` (oldest first, the user's last), streamed as text pieces.

    ``decoding`` (when given) replaces the sampling arguments; ``candidates`` receives what was weighed,
    best first: a beam's reranked N-best, or the one sampled reply once it has ended."""
    import torch

    d = decoding or Decoding(temperature=temperature, top_k=top_k, top_p=top_p, beam=beam, max_length=max_length,
                             repetition_guard=repetition_guard)
    device = device if device is not None else next(model.parameters()).device
    found = candidates if candidates is not None else []
    with torch.inference_mode():
        memory = encode_context(model, tokenizer, turns, context_turns, device)
        n = repeat_ngram(tokenizer) if d.repetition_guard else 0
        words = WordCounter(tokenizer) if d.min_words or d.mmi else None
        options = {"mmi": d.mmi, "mmi_tokens": d.mmi_tokens, "mmi_floor": d.mmi_floor, "min_words": d.min_words,
                   "words": words}
        best_of = not d.beam and d.samples > 1 and d.temperature > 0  # greedy draws would all be the same
        if d.beam > 0:
            found.extend(rerank(beam_candidates(model, memory, d.beam, d.max_length, n, **options), tokenizer, d))
            ids: Iterator[int] = iter(found[0].ids if found else [])
        elif best_of:  # sample-and-rank (Adiwardana et al. 2020), in one batch
            guards = [RepetitionGuard(n) for _ in range(d.samples)] if n else None
            for _ in sample_rows(model, memory, d.samples, d.max_length, d.temperature, d.top_k, d.top_p, generator,
                                 guards, found=found, **options):
                pass
            found[:] = rerank(found, tokenizer, d)
            ids = iter(found[0].ids if found else [])
        else:
            ids = sample_ids(model, memory, d.max_length, d.temperature, d.top_k, d.top_p, generator,
                             RepetitionGuard(n) if n else None, found=found, **options)
        yield from stream_text(ids, tokenizer)
        if not d.beam and not best_of and found:  # the one streamed draw gets its text and score
            rerank(found, tokenizer, d)


def validate_chat_options(temperature: float, top_k: int, top_p: float, beam: int, max_length: int,
                          context_turns: int | None, mmi: float = 0.0, min_words: int = 0, samples: int = 1) -> None:
    """Refuse settings no reply can be decoded with, in the words of ``charnn chat``'s flags."""
    validate_sampling(temperature, top_k, top_p)
    if not 0.0 <= mmi <= 2.0:
        raise CharnnError("--mmi must be between 0 (off) and 2.")
    if not 0 <= min_words <= 100:
        raise CharnnError("--min-length must be between 0 (off) and 100 words.")
    if beam < 0 or beam > 64:
        raise CharnnError("--beam must be between 0 (sample) and 64.")
    if not 1 <= samples <= 64:
        raise CharnnError("--samples must be between 1 and 64.")
    if max_length < 1 or max_length > 10_000:
        raise CharnnError("--max-length must be between 1 and 10,000.")
    if context_turns is not None and not 0 <= context_turns <= 64:
        raise CharnnError("--context must be between 0 and 64 turns.")


def format_exchange(turns: Sequence[str], reply: str, width: int = 80) -> str:
    """'… earlier turn / last turn -> reply' on one line, long turns shortened from the left."""
    shown = [t if len(t) <= width else "…" + t[-width:] for t in turns] or ["(no context)"]
    return " / ".join(shown) + " -> " + reply
