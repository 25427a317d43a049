"""A language model's loss on a token stream, read in windows with the state carried across them:
as training reads it (``score_stream``) and as ``charnn eval`` and ``charnn inspect`` read it
(``score_text`` over a ``parallel_reading``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from charnn.scoring import Score
from charnn.text.dataset import StreamBatcher


def score_windows(model, windows: Iterable[tuple[np.ndarray, np.ndarray]], char_lengths: np.ndarray, device,
                  bf16: bool = True) -> Score:
    """The summed loss of every (inputs, targets) window, in order, each starting from the state the
    window before left (call under no_grad with the model in eval mode)."""
    import torch

    from charnn.runtime.device import bf16_autocast

    total, count, chars = 0.0, 0, 0.0
    state = None
    autocast = bf16_autocast(device, bf16)
    for x, y in windows:
        xb = torch.from_numpy(x).to(device)
        yb = torch.from_numpy(y).to(device)
        with autocast:
            logits, _, state = model(xb, None, state)
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)).float(), yb.reshape(-1), reduction="sum"
        )
        total += float(loss)
        count += y.size
        chars += float(char_lengths[y].sum())
    return Score(total, count, chars)


def score_stream(model, tokens, char_lengths: np.ndarray, batch_size: int, seq_len: int, device,
                 bf16: bool = True) -> tuple[float, float]:
    """Mean loss (nats/token) and bits/char of ``tokens`` read as ``batch_size`` contiguous
    streams in windows of ``seq_len`` (as training reads them; a tail shorter than a window is left)."""
    import torch

    t = min(seq_len, len(tokens) - 1)
    b = max(1, min(batch_size, (len(tokens) - 1) // t))
    batcher = StreamBatcher(tokens, b, t)
    windows = (batcher.window(w)[:2] for w in range(batcher.windows))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            score = score_windows(model, windows, char_lengths, device, bf16)
    finally:
        model.train(was_training)
    return score.nats_per_token, score.bits_per_char


def one_stream(ids: np.ndarray, window: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every token of ``ids`` after the first as a target, in windows of ``window`` (the last may be shorter)."""
    ids = np.asarray(ids, dtype=np.int64)
    for i in range(0, len(ids) - 1, window):
        x = ids[i : min(i + window, len(ids) - 1)]
        yield x[None, :], ids[i + 1 : i + 1 + len(x)][None, :]


STREAMS = 64  # parallel streams a long text is cut into (a CPU step over 64 costs ~25x one over 1, not 64x)
WARMUP = 256  # tokens each stream but the first reads, unscored, before its first scored token


@dataclass(frozen=True)
class ParallelReading:
    """A text's tokens read as B rows side by side, each row a contiguous piece of the text.

    Row 0 starts at the text's first token from a blank state and every prediction in it is scored.
    Row b > 0 starts ``warmup`` tokens before its piece, so its state has read that much of the text
    when its first scored prediction is made; those warm-up predictions are not scored (row b - 1
    scores them). Every target after the first token is scored exactly once, and the last row
    also reads the text's last token (its prediction has no target) so every token has a state.
    """

    positions: np.ndarray  # (B, T) index in the text of each input token; -1 past the end
    scored: np.ndarray  # (B, T) bool: the prediction made after this input (of the next token) counts

    @property
    def read(self) -> np.ndarray:
        """(B, T) bool: each token of the text once, where its state is the scored one."""
        return self.scored | (self.positions == self.positions.max())

    def inputs(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(ids, dtype=np.int64)[np.maximum(self.positions, 0)]

    def targets(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(ids, dtype=np.int64)[np.clip(self.positions + 1, 0, len(ids) - 1)]


def parallel_reading(n_tokens: int, streams: int = STREAMS, warmup: int = WARMUP) -> ParallelReading:
    """How ``charnn eval`` and ``charnn inspect`` read ``n_tokens`` tokens: one stream when the text
    is short (under ``2 * warmup`` per row), else up to ``streams`` rows (see ``ParallelReading``)."""
    m = n_tokens - 1  # inputs that have a next token
    b = max(1, min(streams, m // max(2 * warmup, 1)))
    piece = -(-(m - warmup) // b) if b > 1 else m
    width = piece + (warmup if b > 1 else 0) + 1  # + 1: the text's last token, read but not scored
    col, row = np.arange(width)[None, :], np.arange(b)[:, None]
    pos = row * piece + col
    scored = (pos < m) & (col < width - 1) & ((col >= warmup) | (row == 0))
    keep = scored.any(axis=1)
    pos = np.where(pos <= m, pos, -1)
    return ParallelReading(pos[keep], scored[keep])


def score_text(model, ids: np.ndarray, char_lengths: np.ndarray, device, window: int = 256,
               streams: int = STREAMS, warmup: int = WARMUP) -> Score:
    """``charnn eval``'s reading: every token after the first scored once, the text read as
    ``parallel_reading`` lays it out (``streams=1`` reads it as one stream), in windows of
    ``window`` steps with the state carried."""
    import torch

    reading = parallel_reading(len(ids), streams, warmup)
    x_all, y_all = reading.inputs(ids), reading.targets(ids)
    total, count, chars = 0.0, 0, 0.0
    state = None
    with torch.inference_mode():
        for t in range(0, x_all.shape[1], window):
            mask = reading.scored[:, t : t + window]
            xb = torch.from_numpy(x_all[:, t : t + window]).to(device)
            logits, _, state = model(xb, None, state)
            y = y_all[:, t : t + window][mask]
            logp = torch.log_softmax(logits[torch.from_numpy(mask).to(device)].float(), dim=-1)
            total -= float(logp.gather(1, torch.from_numpy(y).to(device).unsqueeze(1)).sum())
            count += y.size
            chars += float(char_lengths[y].sum())
    return Score(total, count, chars)
