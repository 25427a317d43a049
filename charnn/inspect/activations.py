"""Run a language model over one stream of tokens, chunk by chunk, keeping every layer's signals.

A chunk at a time bounds memory: 100k characters through a 512-wide LSTM is 200 MB per signal per
layer, so consumers (surprise, the finder, unit traces) reduce each chunk as it passes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from charnn.models.cells import LSTM_FAMILY, SIGNALS, trace

CHUNK = 4096  # tokens per pass through the network


@dataclass
class Chunk:
    start: int  # index of the chunk's first token
    logits: torch.Tensor  # (L, V): the prediction made after reading each token (for the next one)
    layers: list[dict[str, torch.Tensor]]  # per layer, {signal: (L, hidden)}


def signals_of(cell: str) -> tuple[str, ...]:
    """The signals a cell exposes: all of c, h, i, f, o, g for the LSTM family, h for GRU and RNN."""
    return SIGNALS if cell in LSTM_FAMILY else ("h",)


def run_chunks(model, ids: np.ndarray, chunk: int = CHUNK) -> Iterator[Chunk]:
    """The model over ``ids`` as one stream (state carried), in inference mode."""
    device = next(model.parameters()).device
    x_all = torch.from_numpy(np.asarray(ids, dtype=np.int64)).to(device)
    state = None
    with torch.inference_mode():
        for start in range(0, len(x_all), chunk):
            x = model.embed(x_all[start : start + chunk].unsqueeze(0))
            out, state, layers = trace(model.rnn, x, state)
            yield Chunk(start, model.head(out[0]).float(), layers)
