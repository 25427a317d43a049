"""Run a language model over a text, a window at a time, keeping every layer's signals.

The text is read as ``charnn eval`` reads it (``scoring.streams.parallel_reading``): a few dozen
contiguous pieces side by side, so each step is one matrix product over all of them instead of
a matrix-vector product per character, and the bits/char is eval's figure. An LSTM is stepped
here (one product per step over all pieces) so its gates are kept as they are made.

A window at a time bounds memory: 100k characters through a 512-wide LSTM is 200 MB per signal
per layer, so consumers (surprise, the finder, unit traces) reduce each chunk as it passes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from charnn.models.cells import LSTM_FAMILY, SIGNALS, StepwiseLSTM, _single_layers, variant_step
from charnn.scoring.streams import STREAMS, WARMUP, parallel_reading

CHUNK = 4096  # tokens per pass through the network, all streams together


@dataclass
class Chunk:
    start: int  # index of the chunk's first token (``positions[0]``)
    logits: torch.Tensor  # (L, V): the prediction made after reading each token (for the next one)
    layers: list[dict[str, torch.Tensor]]  # per layer, {signal: (L, hidden)}
    positions: np.ndarray | None = None  # (L,) index in the text of each row; None: start, start + 1, ...

    def index(self) -> np.ndarray:
        """Each row's token index in the text."""
        if self.positions is not None:
            return self.positions
        return np.arange(self.start, self.start + self.logits.size(0))


def signals_of(cell: str) -> tuple[str, ...]:
    """The signals a cell exposes: all of c, h, i, f, o, g for the LSTM family, h for GRU and RNN."""
    return SIGNALS if cell in LSTM_FAMILY else ("h",)


def run_chunks(model, ids: np.ndarray, chunk: int = CHUNK, streams: int = STREAMS,
               warmup: int = WARMUP) -> Iterator[Chunk]:
    """The model over ``ids`` in inference mode, each token once with the state eval scores it in."""
    device = next(model.parameters()).device
    reading = parallel_reading(len(ids), streams, warmup)
    x_all = torch.from_numpy(reading.inputs(ids)).to(device)
    read = reading.read
    steps = max(1, chunk // len(x_all))
    state = None
    with torch.inference_mode():
        for t in range(0, x_all.size(1), steps):
            out, state, layers = trace_streams(model.rnn, model.embed(x_all[:, t : t + steps]), state)
            mask = read[:, t : t + steps]
            positions = reading.positions[:, t : t + steps][mask]
            if not len(positions):
                continue
            sel = torch.from_numpy(mask).to(device)
            yield Chunk(int(positions[0]), model.head(out[sel]).float(),
                        [{k: v[sel] for k, v in signals.items()} for signals in layers], positions)


def trace_streams(rnn: nn.Module, x: torch.Tensor, state=None):
    """Run the stack over B streams ``x`` (B, T, input) in inference mode.

    Returns ``(top layer output (B, T, H), new state, [per layer {signal: (B, T, H)}])``: every
    signal of ``SIGNALS`` for the LSTM family, ``h`` alone for GRU and plain RNN.
    """
    if isinstance(rnn, (nn.LSTM, StepwiseLSTM)):
        return _trace_lstm(rnn, x, state)
    if state is None:
        state = x.new_zeros(rnn.num_layers, x.size(0), rnn.hidden_size)
    hs, traces = [], []
    for k, layer in enumerate(_single_layers(rnn)):
        x, hk = layer(x, state[k : k + 1])
        traces.append({"h": x})
        hs.append(hk[0])
    return x, torch.stack(hs), traces


def _trace_lstm(rnn: nn.Module, x: torch.Tensor, state):
    """An LSTM-family stack step by step over B streams, each step's gates kept as they are made.

    One ``addmm`` per step over all streams (the input term of every step is one product before
    the loop), written into time-major buffers in place: as fast as the fused kernel at this batch
    size, and the gates come for free instead of being re-computed.
    """
    b, t, hid = x.size(0), x.size(1), rnn.hidden_size
    if state is None:
        z = x.new_zeros(rnn.num_layers, b, hid, dtype=torch.float32)
        state = (z, z.clone())
    variant = getattr(rnn, "variant", None)
    hs, cs, traces = [], [], []
    for k in range(rnn.num_layers):
        w_ih, w_hh = getattr(rnn, f"weight_ih_l{k}"), getattr(rnn, f"weight_hh_l{k}")
        bias = getattr(rnn, f"bias_ih_l{k}") + getattr(rnn, f"bias_hh_l{k}")
        xp = torch.addmm(bias, x.transpose(0, 1).reshape(t * b, -1), w_ih.t()).view(t, b, -1)
        w_hh_t = w_hh.t().contiguous()
        gates = x.new_empty(t, b, 4 * hid, dtype=torch.float32)  # i f g o, time-major
        c_all, h_all = (x.new_empty(t, b, hid, dtype=torch.float32) for _ in range(2))
        h, c = state[0][k].float(), state[1][k].float()
        peep = getattr(rnn, f"weight_ch_l{k}", None)
        for s in range(t):
            if variant is None:  # nn.LSTM, in place: i f g o = σ σ tanh σ
                g = torch.addmm(xp[s], h, w_hh_t, out=gates[s])
                g[:, : 2 * hid].sigmoid_()
                g[:, 2 * hid : 3 * hid].tanh_()
                g[:, 3 * hid :].sigmoid_()
                torch.mul(g[:, :hid], g[:, 2 * hid : 3 * hid], out=c_all[s]).addcmul_(g[:, hid : 2 * hid], c)
                h = torch.tanh(c_all[s], out=h_all[s]).mul_(g[:, 3 * hid :])
            else:
                h, c_new, step_gates = variant_step(variant, torch.addmm(xp[s], h, w_hh_t), c, peep)
                torch.cat(step_gates, dim=1, out=gates[s])
                c_all[s], h_all[s] = c_new, h
            c = c_all[s]
        sig = {"c": c_all, "h": h_all, **dict(zip("ifgo", gates.chunk(4, dim=2), strict=True))}
        traces.append({name: sig[name].transpose(0, 1) for name in SIGNALS})
        hs.append(h)
        cs.append(c)
        x = h_all.transpose(0, 1)
    return x, (torch.stack(hs), torch.stack(cs)), traces
