"""Dialogues as tokenized examples cut into length-bucketed batches: the chat path's ``dataset.py``.

An example is (the previous K turns, the next turn): every turn is a reply to
those before it. The turns are encoded once into one flat array; an example
is two indices into it, so memory grows with the text, not with K.

Batches are bucketed by length: each epoch the examples are sorted by context
length (with a little noise so batches differ between epochs), cut into groups
of a few dozen batches, sorted by reply length within a group, and the batches
shuffled. The batch of step N is a pure function of N and the seed, so a
resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from charnn.config import TokenizerConfig
from charnn.errors import CharnnError
from charnn.text.dataset import check_shares
from charnn.text.dialogue import Conversation
from charnn.text.tokenizers import CharTokenizer, SentencePieceTokenizer, Tokenizer

SPECIALS = ("<pad>", "<bos>", "<eos>", "<sep>")  # tokenizer specials a chat model needs
START = "<start>"  # opens a context that begins a conversation; tokenizers fitted before it lack it
CHAT_SPECIALS = (*SPECIALS, START)
GENERIC_MIN_COUNT = 20  # a reply said this often in training is generic (Csaky et al. 2019, see generic_weights)
GROUP_BATCHES = 32  # batches per length-sorted group


class ChatLayout(Protocol):
    """What the batches need of a chat model's config (``Seq2SeqConfig`` has it all)."""

    context_turns: int
    max_context_tokens: int
    max_reply_tokens: int
    pad_id: int
    bos_id: int
    eos_id: int
    sep_id: int
    start_id: int


def fit_chat_tokenizer(conversations: Sequence[Conversation], tok: TokenizerConfig) -> Tokenizer:
    """A tokenizer for the turns' text with the chat specials (<pad>, <bos>, <eos>, <sep>, <start>)."""
    if tok.kind == "char":
        return CharTokenizer.fit((t for turns in conversations for t in turns), CHAT_SPECIALS)
    chunks = ("\n".join(turns) + "\n" for turns in conversations)
    return SentencePieceTokenizer.fit(chunks, tok.kind, tok.vocab_size, CHAT_SPECIALS)


def encode_turn(tokenizer: Tokenizer, text: str) -> np.ndarray:
    """Ids of one turn; characters a char tokenizer never saw are dropped rather than refused."""
    unknown = tokenizer.unknown_chars(text)
    if unknown:
        text = "".join(c for c in text if c not in set(unknown))
    if tokenizer.kind != "char":  # a literal "<eos>" in the text must not become the real one
        for name in CHAT_SPECIALS:
            text = text.replace(name, "")
    return tokenizer.encode_array(text)


def encode_turns(tokenizer: Tokenizer, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """All turns at once (much faster than one by one): their ids end to end, and each turn's length."""
    if not texts:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64)
    if tokenizer.kind == "char":
        try:  # one id per character: the lengths are the texts' lengths
            return tokenizer.encode_array("".join(texts)), np.fromiter(map(len, texts), np.int64, len(texts))
        except CharnnError:
            pass  # characters it never saw: drop them turn by turn below
    elif hasattr(tokenizer, "sp"):
        clean = list(texts)
        for name in CHAT_SPECIALS:
            clean = [t.replace(name, "") if name in t else t for t in clean]
        pieces = tokenizer.sp.encode(clean)
        lengths = np.fromiter(map(len, pieces), np.int64, len(pieces))
        flat = np.fromiter((i for p in pieces for i in p), np.int32, int(lengths.sum()))
        return flat, lengths
    pieces = [encode_turn(tokenizer, t) for t in texts]
    return np.concatenate(pieces), np.fromiter(map(len, pieces), np.int64, len(pieces))


def special_ids(tokenizer: Tokenizer) -> dict[str, int]:
    """The chat specials' ids as a chat model's config names them (``pad_id`` ...); ``start_id`` is -1 for a
    tokenizer without <start>, so a model built on it never sees the marker."""
    try:
        ids = {f"{name[1:-1]}_id": tokenizer.special_id(name) for name in SPECIALS}
    except (KeyError, ValueError):
        raise CharnnError("This tokenizer has no chat tokens (<pad>, <bos>, <eos>, <sep>); "
                          "it belongs to a language model, not a chat model.") from None
    try:
        ids["start_id"] = tokenizer.special_id(START)
    except (KeyError, ValueError):
        ids["start_id"] = -1
    return ids


def generic_weights(conversations: Sequence[Conversation], weight: float,
                    min_count: int = GENERIC_MIN_COUNT) -> np.ndarray:
    """A loss weight per turn (in the examples' order): ``weight`` for generic replies, 1 for the rest.

    Csaky et al. 2019 drop replies whose entropy over the contexts they answer is high; here nearly
    every context is unique, so that entropy is about log(count) and a generic reply is one said at
    least ``min_count`` times (compared in lower case without punctuation: "Hi!" is "hi").
    """
    keys = ["".join(c for c in t.lower() if c.isalnum() or c == " ").strip() for turns in conversations
            for t in turns]
    counts: dict[str, int] = {}
    for k in keys:
        counts[k] = counts.get(k, 0) + 1
    return np.array([weight if counts[k] >= min_count else 1.0 for k in keys], dtype=np.float32)


class DialogueExamples:
    """Tokenized turns in one flat array, and the examples as (first context turn, reply turn) indices."""

    def __init__(self, conversations: Sequence[Conversation], tokenizer: Tokenizer, cfg: ChatLayout,
                 max_reply_tokens: int | None = None):
        self.cfg = cfg
        max_reply = max_reply_tokens or cfg.max_reply_tokens
        texts, firsts, opens = [], [], []
        for turns in conversations:
            n = len(texts)
            firsts.extend(n + max(0, i - cfg.context_turns) for i in range(len(turns)))
            opens.extend(i <= cfg.context_turns for i in range(len(turns)))  # context from the first turn on
            texts.extend(turns)
        ids, self.turn_len = encode_turns(tokenizer, texts)
        self.ids = ids.astype(np.uint16 if tokenizer.vocab_size <= 65535 else np.int32)
        self.turn_start = np.concatenate([[0], np.cumsum(self.turn_len)[:-1]]).astype(np.int64)
        self.first = np.asarray(firsts, dtype=np.int64)
        self.reply = np.arange(len(texts), dtype=np.int64)  # every turn is a reply to those before it
        # <start> before a context that begins the conversation, when the model has the marker
        self.opens = np.asarray(opens, dtype=bool) & (getattr(cfg, "start_id", -1) >= 0)
        # context: [<start>] each turn and its <sep>, cut to the most recent max_context_tokens; never empty
        csum = np.concatenate([[0], np.cumsum(self.turn_len + 1)])
        ctx = csum[self.reply] - csum[self.first] + self.opens
        self.ctx_len = np.clip(ctx, 1, cfg.max_context_tokens)
        # decoder input: <bos> + reply (cut to max_reply_tokens); targets: reply + <eos> when whole
        self.rep_len = np.minimum(self.turn_len[self.reply], max_reply) + 1
        self.whole = self.turn_len[self.reply] <= max_reply
        # characters of each example's targets: the reply (<eos> has none), or its first tokens when cut
        char_lengths = tokenizer.char_lengths()
        cum = np.concatenate([[0.0], np.cumsum(char_lengths[self.ids.astype(np.int64)])])
        starts = self.turn_start[self.reply]
        self.chars = cum[starts + self.rep_len - self.whole] - cum[starts]
        self.eos_cut = int((~self.whole).sum())

    def __len__(self) -> int:
        return len(self.reply)

    def target_tokens(self, index=None) -> int:
        return int(self.rep_len.sum() if index is None else self.rep_len[index].sum())

    def reply_ids(self, i: int) -> np.ndarray:
        j = self.reply[i]
        return self.ids[self.turn_start[j] : self.turn_start[j] + self.turn_len[j]]

    def context_of(self, i: int) -> list[np.ndarray]:
        return [self.ids[self.turn_start[j] : self.turn_start[j] + self.turn_len[j]]
                for j in range(self.first[i], self.reply[i])]

    def context_tokens(self, i: int, keep: int | None = None) -> np.ndarray:
        """Example ``i``'s context ids: its last ``keep`` turns (None: all), each ended by <sep>, after <start>
        when they begin the conversation, cut to the most recent max_context_tokens; never empty."""
        cfg = self.cfg
        first = self.first[i] if keep is None else max(self.first[i], self.reply[i] - keep)
        parts = [np.array([cfg.start_id])] if self.opens[i] and first == self.first[i] else []
        for j in range(first, self.reply[i]):
            st = self.turn_start[j]
            parts.append(self.ids[st : st + self.turn_len[j]])
            parts.append(np.array([cfg.sep_id]))
        return np.concatenate(parts)[-cfg.max_context_tokens :] if parts else np.array([cfg.sep_id])

    def batch(self, index: np.ndarray, drop_context: bool = False,
              keep_turns: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """Context (B x S), lengths (B), decoder input (B x T) and targets (B x T), all int64, pad 0-filled;
        ``keep_turns`` cuts each row's context to its last that many turns (context dropout)."""
        cfg = self.cfg
        b = len(index)
        if drop_context:
            contexts = [np.array([cfg.sep_id])] * b
        else:
            keeps = [None] * b if keep_turns is None else [int(k) for k in keep_turns]
            contexts = [self.context_tokens(i, k) for i, k in zip(index, keeps, strict=True)]
        ctx_len = np.fromiter(map(len, contexts), np.int64, b)
        s, t = int(ctx_len.max()), int(self.rep_len[index].max())
        ctx = np.full((b, s), cfg.pad_id, dtype=np.int64)
        rin = np.full((b, t), cfg.pad_id, dtype=np.int64)
        tgt = np.full((b, t), cfg.pad_id, dtype=np.int64)
        for row, i in enumerate(index):
            ctx[row, : ctx_len[row]] = contexts[row]
            st, n = self.turn_start[self.reply[i]], self.rep_len[i] - 1
            rin[row, 0] = cfg.bos_id
            rin[row, 1 : n + 1] = self.ids[st : st + n]
            if self.whole[i]:
                tgt[row, :n] = self.ids[st : st + n]
                tgt[row, n] = cfg.eos_id
            else:  # a reply cut short has no end: its last target is the next token, not <eos>
                tgt[row, : n + 1] = self.ids[st : st + n + 1]
        return ctx, ctx_len, rin, tgt


class BucketBatcher:
    """Length-bucketed batches of examples, a fresh shuffle each epoch, a pure function of the step."""

    def __init__(self, examples: DialogueExamples, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        check_shares(batch_size, world)
        self.examples = examples
        self.batch_size = batch_size
        self.seed = seed
        self.rank, self.world = rank, world
        self.windows = max(1, math.ceil(len(examples) / batch_size))  # batches per epoch
        self._plan_epoch = -1
        self._plan: list[np.ndarray] = []

    def plan(self, epoch: int, bucketed: bool = True) -> list[np.ndarray]:
        ex = self.examples
        rng = np.random.default_rng([self.seed, epoch])
        n, b = len(ex), self.batch_size
        if not bucketed:
            order = rng.permutation(n)
            return [order[i : i + b] for i in range(0, n, b)]
        order = np.argsort(ex.ctx_len + rng.uniform(0, 4, n), kind="stable")
        batches = []
        group = b * GROUP_BATCHES
        for g in range(0, n, group):
            chunk = order[g : g + group]
            chunk = chunk[np.argsort(ex.rep_len[chunk] + rng.uniform(0, 1, len(chunk)), kind="stable")]
            batches.extend(chunk[i : i + b] for i in range(0, len(chunk), b))
        rng.shuffle(batches)
        return batches

    def global_batch(self, step: int) -> np.ndarray:
        epoch, k = divmod(step, self.windows)
        if epoch != self._plan_epoch:
            self._plan, self._plan_epoch = self.plan(epoch), epoch
        return self._plan[k % len(self._plan)]

    def local_batch(self, step: int) -> np.ndarray:
        batch = self.global_batch(step)
        return batch[self.rank :: self.world] if self.world > 1 else batch

    def epoch(self, step: int) -> float:
        return step / self.windows


def padding_waste(examples: DialogueExamples, batches: Sequence[np.ndarray]) -> dict[str, float]:
    """Share of padded positions in the context, reply and both, over ``batches``."""
    real_c = real_r = pad_c = pad_r = 0
    for idx in batches:
        c, r = examples.ctx_len[idx], examples.rep_len[idx]
        real_c += int(c.sum())
        real_r += int(r.sum())
        pad_c += int(c.max()) * len(idx)
        pad_r += int(r.max()) * len(idx)
    return {
        "context": 1 - real_c / max(pad_c, 1),
        "reply": 1 - real_r / max(pad_r, 1),
        "total": 1 - (real_c + real_r) / max(pad_c + pad_r, 1),
    }
