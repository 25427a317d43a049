"""Surprise: how many bits the model paid for each character, and what it expected instead.

Bits are counted per token, as ``charnn eval`` counts them (the first token is given, every later
one predicted), so the text's bits/char is the same figure. A subword token's bits are spread
evenly over its characters, so a char and a subword model colour the same text comparably.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import torch

TOP_K = 5  # guesses kept per position


@dataclass
class TokenLayout:
    """Where each token sits in the text the model read (its tokens, decoded)."""

    text: str
    ids: np.ndarray  # (n,) token ids
    starts: np.ndarray  # (n,) offset of each token's first character in ``text``
    lengths: np.ndarray  # (n,) characters per token (0 for a token with no text)
    scored_chars: float  # characters of tokens 1 .. n-1, as `charnn eval` counts them

    def token_at(self, char_index: int) -> int:
        """The token that holds character ``char_index``."""
        return int(np.searchsorted(self.starts, char_index, side="right") - 1)


def layout(tokenizer, text: str, ids: np.ndarray) -> TokenLayout:
    counted = tokenizer.char_lengths()[ids]
    if tokenizer.kind == "char":
        shown, lengths = text, counted
    else:
        shown = tokenizer.decode(ids.tolist())
        lengths = counted
        if len(shown) != int(counted.sum()):  # stray bytes decoded as replacement characters
            pieces = [tokenizer.decode([int(i)]) for i in ids]
            shown, lengths = "".join(pieces), np.array([len(p) for p in pieces], dtype=np.float64)
    lengths = lengths.astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return TokenLayout(shown, np.asarray(ids), starts, lengths, float(counted[1:].sum()))


@dataclass
class Surprise:
    layout: TokenLayout
    token_bits: np.ndarray  # (n,) bits paid for each token; NaN for the first (it is given)
    guess_ids: np.ndarray  # (n, k) the model's top guesses for each token, before reading it; -1 for the first
    guess_probs: np.ndarray  # (n, k) their probabilities
    bits_per_char: float  # the text's figure, as `charnn eval` gives it

    @property
    def char_bits(self) -> np.ndarray:
        """Bits for each character of ``layout.text`` (the token's bits spread over its characters)."""
        lay = self.layout
        per_char = self.token_bits / np.maximum(lay.lengths, 1)
        return np.repeat(per_char, lay.lengths).astype(np.float32)

    def guesses(self, char_index: int, tokenizer) -> list[tuple[str, float]]:
        """The model's top guesses for the token holding ``char_index``, with their probabilities."""
        t = self.layout.token_at(char_index)
        return [(tokenizer.decode([int(i)]), float(p))
                for i, p in zip(self.guess_ids[t], self.guess_probs[t], strict=True) if i >= 0]

    def hot_spans(self, n: int = 5) -> list[tuple[int, int, float]]:
        """The ``n`` most surprising words (or punctuation marks) as ``(start, end, bits)``, most
        surprising first; each distinct word once, at its most surprising place."""
        text, bits = self.layout.text, np.nan_to_num(self.char_bits, nan=0.0)
        sums = np.concatenate([[0.0], np.cumsum(bits, dtype=np.float64)])
        spans = [(m.start(), m.end()) for m in re.finditer(r"\w+|[^\w\s]", text)]
        ranked = sorted(((float(sums[b] - sums[a]), a, b) for a, b in spans), key=lambda x: -x[0])
        found: list[tuple[int, int, float]] = []
        seen: set[str] = set()
        for total, a, b in ranked:
            if len(found) >= n or total <= 0:
                break
            if text[a:b] not in seen:
                seen.add(text[a:b])
                found.append((a, b, total))
        return found


class SurpriseCounter:
    """Adds up a text's bits and guesses chunk by chunk (see ``activations.run_chunks``)."""

    def __init__(self, lay: TokenLayout, top_k: int = TOP_K):
        n = len(lay.ids)
        self.layout, self.top_k = lay, top_k
        self.ids = torch.from_numpy(np.asarray(lay.ids, dtype=np.int64))
        self.bits = np.full(n, np.nan)
        self.guess_ids = np.full((n, top_k), -1, dtype=np.int32)
        self.guess_probs = np.zeros((n, top_k), dtype=np.float32)

    def add(self, start: int, logits: torch.Tensor, positions: np.ndarray | None = None) -> None:
        """The predictions ``logits`` (L, V) made after reading tokens ``positions`` (default
        ``start .. start + L - 1``); the last token's prediction has no target and is skipped."""
        if positions is None:
            positions = np.arange(start, start + logits.size(0))
        keep = positions < len(self.ids) - 1
        if not keep.any():
            return
        if not keep.all():
            logits, positions = logits[torch.from_numpy(keep).to(logits.device)], positions[keep]
        logp = torch.log_softmax(logits.float(), dim=-1)
        at = torch.from_numpy(positions + 1)
        target = self.ids[at].to(logp.device)
        nll = -logp.gather(1, target.unsqueeze(1)).squeeze(1)
        self.bits[positions + 1] = nll.double().cpu().numpy() / math.log(2)
        k = min(self.top_k, logp.size(1))
        top = logp.topk(k, dim=1)
        self.guess_ids[positions + 1, :k] = top.indices.cpu().numpy()
        self.guess_probs[positions + 1, :k] = top.values.exp().cpu().numpy()

    def result(self) -> Surprise:
        total = float(np.nansum(self.bits))
        return Surprise(self.layout, self.bits, self.guess_ids, self.guess_probs,
                        total / max(self.layout.scored_chars, 1e-9))
