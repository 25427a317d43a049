"""How well a chat model converses: does it pick the real reply, and are its own replies worth reading?

``rank_replies``: hits@1 of 20 (Lowe et al. 2015's recall@1): the real held-out reply among itself and 19
other held-out replies, ranked by loss given the context (plain) or by loss given the context minus
loss given none (PMI), all 20 x N pairs scored in batches. ``reply_stats``: over decoded replies,
the share of replies of two words or fewer, the commonest reply's share, distinct-1/2 and mean words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from charnn.text.chat_batches import DialogueExamples

N_RANKED = 500  # held-out replies ranked among distractors
N_CANDIDATES = 20
PAIR_BATCH = 256  # (context, candidate) pairs per forward pass
SHORT_WORDS = 2  # a reply of this many words or fewer counts as short


def with_context(examples: DialogueExamples) -> np.ndarray:
    """Examples that have at least one context turn and a non-empty reply."""
    return np.flatnonzero((examples.first < examples.reply) & (examples.turn_len[examples.reply] > 0))


@dataclass
class Ranking:
    """Losses (nats) of each ranked context's candidates: ``given[i, j]`` of candidate ``j`` (0 is the real
    reply) given context i, ``alone[i, j]`` the same reply given no context; ``tokens[i, j]`` its length
    in scored tokens (with <eos>)."""

    given: np.ndarray
    alone: np.ndarray
    tokens: np.ndarray | None = None

    def hits_at_1(self, mmi: float = 0.0, per_token: bool = False) -> float:
        """Share of contexts whose real reply scores best by loss - mmi * loss without context: summed over
        its tokens (a log-probability ratio), or, ``per_token``, divided by its length (as ParlAI ranks a
        generative model's candidates), which stops short replies winning for being short."""
        score = self.given - mmi * self.alone
        if per_token:
            score = score / np.maximum(self.tokens if self.tokens is not None else 1, 1)
        best = score.min(axis=1, keepdims=True)
        return float((score[:, 0] <= best[:, 0]).mean()) if len(score) else 0.0


def _pair_nats(model, memory, rows, rin, tgt, pad: int, autocast):
    """Summed loss of replies ``rin``/``tgt`` (P x T) read by the memory rows ``rows`` (P)."""
    import torch.nn.functional as F

    t = int((tgt != pad).sum(1).max())
    with autocast:
        logits, _ = model.decode(memory.select(rows), rin[:, :t])
    loss = F.cross_entropy(logits.transpose(1, 2).float(), tgt[:, :t], ignore_index=pad, reduction="none")
    return loss.sum(1).double().cpu().numpy()


def context_free_logp(model, ids: list[int], ended: bool, device) -> float:
    """log p(reply | no context) of a whole decoded reply (with its <eos> when it ended), in nats: the
    same pass as the ranking's context-free scores."""
    import contextlib

    import torch

    from charnn.decoding.replies import encode_context

    cfg = model.config
    n = len(ids) + bool(ended)
    with torch.inference_mode():
        memory = encode_context(model, None, [], 0, device)
        rin = torch.tensor([[cfg.bos_id, *ids][:n]], device=device)
        tgt = torch.tensor([[*ids, cfg.eos_id][:n]], device=device)
        nats = _pair_nats(model, memory, torch.zeros(1, dtype=torch.long, device=device), rin, tgt, cfg.pad_id,
                          contextlib.nullcontext())
    return -float(nats[0])


def _draw(examples: DialogueExamples, n: int, candidates: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The ranked examples (fixed by ``seed``) and, per row, the positions in them of its candidates
    (the real reply first, then distinct others)."""
    pool = with_context(examples)
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(pool, size=min(n, len(pool)), replace=False))
    m = len(picked)
    k = min(candidates, m)
    cand = np.zeros((m, k), dtype=np.int64)
    for i in range(m):
        others = rng.choice(m - 1, size=k - 1, replace=False)
        cand[i] = [i, *(others + (others >= i))]
    return picked, cand


def rank_replies(model, examples: DialogueExamples, device, n: int = N_RANKED, candidates: int = N_CANDIDATES,
                 seed: int = 0, batch: int = PAIR_BATCH, bf16: bool = True) -> Ranking:
    """Score each of ``n`` held-out replies (fixed by ``seed``) and ``candidates - 1`` others drawn from them
    against its context, and all of them with no context. Contexts are encoded once, a chunk at a time in
    order of length, and each chunk's pairs decoded in order of reply length, so little is padding."""
    import torch

    from charnn.runtime.device import bf16_autocast

    picked, cand = _draw(examples, n, candidates, seed)
    m, k = cand.shape
    pad = examples.cfg.pad_id
    autocast = bf16_autocast(device, bf16)
    given, alone = np.zeros((m, k)), np.zeros(m)
    rep_len = examples.rep_len[picked]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            _, _, rin_all, tgt_all = (torch.from_numpy(a).to(device) for a in examples.batch(picked))
            by_reply = np.argsort(rep_len, kind="stable")
            for s in range(0, m, batch // 4):  # no context: one <sep> each, so the rows are the pairs
                rows = by_reply[s : s + batch // 4]
                ctx, lengths, _, _ = (torch.from_numpy(a).to(device) for a in examples.batch(picked[rows], True))
                with autocast:
                    memory = model.encode(ctx, lengths)
                idx = torch.from_numpy(rows).to(device)
                alone[rows] = _pair_nats(model, memory, torch.arange(len(rows), device=device), rin_all[idx],
                                         tgt_all[idx], pad, autocast)
            by_context = np.argsort(examples.ctx_len[picked], kind="stable")
            chunk = max(1, 4 * batch // k)  # contexts encoded together
            for s in range(0, m, chunk):
                ctx_rows = by_context[s : s + chunk]
                ctx, lengths, _, _ = (torch.from_numpy(a).to(device) for a in examples.batch(picked[ctx_rows]))
                with autocast:
                    memory = model.encode(ctx, lengths)
                pairs = np.stack(np.meshgrid(np.arange(len(ctx_rows)), np.arange(k), indexing="ij"), -1).reshape(-1, 2)
                reply_of = cand[ctx_rows][pairs[:, 0], pairs[:, 1]]
                pairs = pairs[np.argsort(rep_len[reply_of], kind="stable")]
                for p in range(0, len(pairs), batch):
                    part = pairs[p : p + batch]
                    idx = torch.from_numpy(cand[ctx_rows][part[:, 0], part[:, 1]]).to(device)
                    nats = _pair_nats(model, memory, torch.from_numpy(part[:, 0]).to(device), rin_all[idx],
                                      tgt_all[idx], pad, autocast)
                    given[ctx_rows[part[:, 0]], part[:, 1]] = nats
    finally:
        model.train(was_training)
    return Ranking(given, alone[cand], rep_len[cand])


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct word n-grams over all n-grams of ``texts`` (Li et al. 2016)."""
    grams, total = set(), 0
    for text in texts:
        words = text.split()
        for i in range(len(words) - n + 1):
            grams.add(tuple(words[i : i + n]))
            total += 1
    return len(grams) / total if total else 0.0


WORD_EDGES = "".join(chr(c) for c in range(0x2000, 0x2070)) + "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def word_key(word: str) -> str:
    """A word as the new-word check compares it: lower case, without the punctuation around it."""
    return word.lower().strip(WORD_EDGES)


def known_words(conversations) -> set[str]:
    """Every word (``word_key``) of the conversations' turns."""
    return {word_key(w) for turns in conversations for t in turns for w in t.split()}


def reply_stats(replies: Sequence[str], nats_per_token: Sequence[float] = (),
                pmi: Sequence[float] = (), known: set[str] | None = None) -> dict[str, float]:
    """Short share (<= 2 words), the commonest reply's share, distinct-1/2, mean words per reply and, given
    each reply's loss per token under the model, its mean (how far a decoding strays from what the model
    finds likely: higher is less fluent); given each reply's log p(reply | context) - log p(reply | no
    context) in nats, its mean (how much more likely the conversation makes the reply: how much the
    reply is about what was said); given the ``known`` words of the text, the share of replies with a word
    it never has (a subword model's made-up words: "hisgas", "thood")."""
    words = [len(r.split()) for r in replies]
    normal = Counter(" ".join(r.lower().split()) for r in replies)
    n = max(len(replies), 1)
    new = [any((k := word_key(w)) and k not in known for w in r.split()) for r in replies] if known else []
    return {
        "new_word_share": sum(new) / n,
        "short_share": sum(w <= SHORT_WORDS for w in words) / n,
        "top_share": (normal.most_common(1)[0][1] / n) if replies else 0.0,
        "distinct_1": distinct_n(replies, 1),
        "distinct_2": distinct_n(replies, 2),
        "mean_words": sum(words) / n,
        "nats_per_token": -sum(nats_per_token) / n if nats_per_token else 0.0,
        "pmi": sum(pmi) / n if pmi else 0.0,
    }
