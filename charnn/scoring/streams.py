"""A language model's loss on a token stream, read in windows with the state carried across them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

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


def score_text(model, ids: np.ndarray, char_lengths: np.ndarray, device, window: int = 256) -> Score:
    """The whole of ``ids`` as one stream, every token scored (``charnn eval``'s reading)."""
    import torch

    with torch.inference_mode():
        return score_windows(model, one_stream(ids, window), char_lengths, device, bf16=False)
