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
from charnn.text.dialogue import Conversation
from charnn.text.tokenizers import CharTokenizer, SentencePieceTokenizer, Tokenizer

SPECIALS = ("<pad>", "<bos>", "<eos>", "<sep>")  # tokenizer specials a chat model needs
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


def fit_chat_tokenizer(conversations: Sequence[Conversation], tok: TokenizerConfig) -> Tokenizer:
    """A tokenizer for the turns' text with the chat specials (<pad>, <bos>, <eos>, <sep>)."""
    if tok.kind == "char":
        return CharTokenizer.fit((t for turns in conversations for t in turns), SPECIALS)
    if tok.vocab_size < 2:
        raise CharnnError("--vocab-size must be at least 2 for a subword tokenizer.")
    chunks = ("\n".join(turns) + "\n" for turns in conversations)
    return SentencePieceTokenizer.fit(chunks, tok.kind, tok.vocab_size, SPECIALS)


def encode_turn(tokenizer: Tokenizer, text: str) -> np.ndarray:
    """Ids of one turn; characters a char tokenizer never saw are dropped rather than refused."""
    unknown = tokenizer.unknown_chars(text)
    if unknown:
        text = "".join(c for c in text if c not in set(unknown))
    if tokenizer.kind != "char":  # a literal "<eos>" in the text must not become the real one
        for name in SPECIALS:
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
        for name in SPECIALS:
            clean = [t.replace(name, "") if name in t else t for t in clean]
        pieces = tokenizer.sp.encode(clean)
        lengths = np.fromiter(map(len, pieces), np.int64, len(pieces))
        flat = np.fromiter((i for p in pieces for i in p), np.int32, int(lengths.sum()))
        return flat, lengths
    pieces = [encode_turn(tokenizer, t) for t in texts]
    return np.concatenate(pieces), np.fromiter(map(len, pieces), np.int64, len(pieces))


def special_ids(tokenizer: Tokenizer) -> dict[str, int]:
    """The chat specials' ids as a chat model's config names them (``pad_id`` ...)."""
    try:
        return {f"{name[1:-1]}_id": tokenizer.special_id(name) for name in SPECIALS}
    except (KeyError, ValueError):
        raise CharnnError("This tokenizer has no chat tokens (<pad>, <bos>, <eos>, <sep>); "
                          "it belongs to a language model, not a chat model.") from None


class DialogueExamples:
    """Tokenized turns in one flat array, and the examples as (first context turn, reply turn) indices."""

    def __init__(self, conversations: Sequence[Conversation], tokenizer: Tokenizer, cfg: ChatLayout,
                 max_reply_tokens: int | None = None):
        self.cfg = cfg
        max_reply = max_reply_tokens or cfg.max_reply_tokens
        texts, firsts = [], []
        for turns in conversations:
            n = len(texts)
            firsts.extend(n + max(0, i - cfg.context_turns) for i in range(len(turns)))
            texts.extend(turns)
        ids, self.turn_len = encode_turns(tokenizer, texts)
        self.ids = ids.astype(np.uint16 if tokenizer.vocab_size <= 65535 else np.int32)
        self.turn_start = np.concatenate([[0], np.cumsum(self.turn_len)[:-1]]).astype(np.int64)
        self.first = np.asarray(firsts, dtype=np.int64)
        self.reply = np.arange(len(texts), dtype=np.int64)  # every turn is a reply to those before it
        # context: each turn and its <sep>, cut to the most recent max_context_tokens; never empty
        csum = np.concatenate([[0], np.cumsum(self.turn_len + 1)])
        ctx = csum[self.reply] - csum[self.first]
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

    def batch(self, index: np.ndarray, drop_context: bool = False) -> tuple[np.ndarray, ...]:
        """Context (B x S), lengths (B), decoder input (B x T) and targets (B x T), all int64, pad 0-filled."""
        cfg = self.cfg
        b = len(index)
        ctx_len = np.ones(b, dtype=np.int64) if drop_context else self.ctx_len[index]
        s, t = int(ctx_len.max()), int(self.rep_len[index].max())
        ctx = np.full((b, s), cfg.pad_id, dtype=np.int64)
        rin = np.full((b, t), cfg.pad_id, dtype=np.int64)
        tgt = np.full((b, t), cfg.pad_id, dtype=np.int64)
        for row, i in enumerate(index):
            if drop_context:
                ctx[row, 0] = cfg.sep_id
            else:
                parts = []
                for j in range(self.first[i], self.reply[i]):
                    st = self.turn_start[j]
                    parts.append(self.ids[st : st + self.turn_len[j]])
                    parts.append(np.array([cfg.sep_id]))
                c = np.concatenate(parts)[-cfg.max_context_tokens :] if parts else np.array([cfg.sep_id])
                ctx[row, : len(c)] = c
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
        if batch_size % world:
            raise CharnnError(f"--batch-size {batch_size} must be divisible by the {world} processes.")
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
