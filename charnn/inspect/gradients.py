"""Gradient flow: how strongly the loss at step t reaches back to the hidden state k steps earlier.

The mean over positions of ``‖∂L_t/∂h_{t-k}‖`` for k = 1 .. window (h of every layer together),
the vanishing-gradient picture of the lecture decks: a plain RNN's norm falls by orders of
magnitude within a few steps, an LSTM's cell state carries it much further.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from charnn.errors import CharnnError
from charnn.models.cells import LSTM_FAMILY, step

WINDOW = 64
SAMPLES = 32  # positions t averaged over
WARMUP = 64  # tokens read (without gradients) before each window, so the state is a real one


@dataclass
class GradientFlow:
    checkpoint: str
    cell: str
    norms: list[float]  # norms[k - 1] = mean ‖∂L_t/∂h_{t-k}‖

    def at(self, k: int) -> float | None:
        return self.norms[k - 1] if 1 <= k <= len(self.norms) else None


def gradient_flow(model, ids: np.ndarray, window: int = WINDOW, samples: int = SAMPLES,
                  warmup: int = WARMUP, checkpoint: str = "") -> GradientFlow:
    """``‖∂L_t/∂h_{t-k}‖`` averaged over up to ``samples`` positions t spread over the text."""
    cfg = model.config
    n = len(ids)
    window = min(window, n - 2)
    if window < 1:
        raise CharnnError("The text is too short for gradient flow; it needs at least three tokens.")
    first = window  # t must have `window` steps before it and a next token after it
    ends = np.unique(np.linspace(first, n - 2, num=min(samples, n - 1 - first)).astype(np.int64))
    starts = ends - window
    device = next(model.parameters()).device
    x = torch.from_numpy(np.asarray(ids, dtype=np.int64)).to(device)
    state = _warm_state(model, x, starts, warmup)
    at, nxt = torch.as_tensor(starts, device=device), torch.as_tensor(ends + 1, device=device)
    with torch.enable_grad():
        hs = [h.clone() for h in state[0]]
        cs = [c.clone() for c in state[1]] if state[1] is not None else None
        kept = []
        for j in range(window + 1):  # steps t - window .. t
            top = step(model.rnn, cfg.cell, model.embed(x[at + j]), hs, cs)
            for h in hs:
                h.retain_grad()
            kept.append(list(hs))
        logits = model.head(top)
        loss = torch.nn.functional.cross_entropy(logits.float(), x[nxt], reduction="sum")
        loss.backward()
    norms = []
    for k in range(1, window + 1):
        grads = [h.grad for h in kept[window - k]]
        per_pos = torch.sqrt(sum((g.float() ** 2).sum(dim=1) for g in grads))
        norms.append(float(per_pos.mean()))
    model.zero_grad(set_to_none=True)
    return GradientFlow(checkpoint, cfg.cell, norms)


def _warm_state(model, x: torch.Tensor, starts: np.ndarray, warmup: int):
    """Each window's starting state: the model run over the ``warmup`` tokens before it."""
    cfg = model.config
    b = len(starts)
    zeros = torch.zeros(cfg.layers, b, cfg.hidden, device=x.device)
    state = (zeros, zeros.clone()) if cfg.cell in LSTM_FAMILY else zeros
    span = int(min(warmup, starts.min()))
    if span > 0:
        rows = torch.stack([x[s - span : s] for s in starts.tolist()])
        with torch.no_grad():
            _, _, state = model(rows, state=state)
    if cfg.cell in LSTM_FAMILY:
        return [h.detach() for h in state[0]], [c.detach() for c in state[1]]
    return [h.detach() for h in state], None
