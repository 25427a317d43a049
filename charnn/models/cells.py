"""LSTM cells run one step at a time: the variants of the lecture decks, and the gates of any LSTM.

``peephole`` (Gers & Schmidhuber 2000): the input and forget gates also read the previous cell
state and the output gate the new one, through one weight per unit (a diagonal "peephole"):

    i = σ(W_i x + U_i h + p_i ⊙ c_{t-1} + b_i)     f = σ(W_f x + U_f h + p_f ⊙ c_{t-1} + b_f)
    g = tanh(W_g x + U_g h + b_g)                  c_t = f ⊙ c_{t-1} + i ⊙ g
    o = σ(W_o x + U_o h + p_o ⊙ c_t + b_o)         h_t = o ⊙ tanh(c_t)

``cifg`` (coupled input and forget gates): ``i = 1 - f``, so the cell keeps a convex mix of its
past and the candidate, with three gate blocks (f, g, o) instead of four.

``StepwiseLSTM`` has ``nn.LSTM``'s interface (batch first, ``(h, c)`` stacked by layer, dropout
between layers), so the language model uses either. ``trace`` runs any LSTM-family stack over one
stream and returns every step's h, c and gates; for ``nn.LSTM`` (fused cuDNN / oneDNN kernels that
never expose the gates) it re-computes them from the same weights, in one matrix product per layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

GATE_BLOCKS = {"peephole": 4, "cifg": 3}  # weight blocks per variant: i f g o / f g o
VARIANTS = tuple(GATE_BLOCKS)
LSTM_FAMILY = ("lstm", *VARIANTS)  # cells with a cell state and i, f, o, g gates
SIGNALS = ("c", "h", "i", "f", "o", "g")


def variant_step(variant: str, pre: torch.Tensor, c: torch.Tensor, peep: torch.Tensor | None):
    """One step from the pre-activations ``W x + U h + b``: returns ``(h, c, (i, f, g, o))``."""
    if variant == "cifg":
        pf, pg, po = pre.chunk(3, dim=-1)
        f = torch.sigmoid(pf)
        i = 1.0 - f
        g = torch.tanh(pg)
        c = f * c + i * g
        o = torch.sigmoid(po)
    else:
        pi, pf, pg, po = pre.chunk(4, dim=-1)
        i = torch.sigmoid(pi + peep[0] * c)
        f = torch.sigmoid(pf + peep[1] * c)
        g = torch.tanh(pg)
        c = f * c + i * g
        o = torch.sigmoid(po + peep[2] * c)
    return o * torch.tanh(c), c, (i, f, g, o)


class StepwiseLSTM(nn.Module):
    """A stack of peephole or coupled-gate LSTM layers, shaped like ``nn.LSTM(batch_first=True)``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0,
                 batch_first: bool = True, variant: str = "peephole"):
        super().__init__()
        if variant not in GATE_BLOCKS or not batch_first:
            raise ValueError(f"StepwiseLSTM supports {VARIANTS} with batch_first=True, not {variant!r}")
        self.variant, self.hidden_size, self.num_layers, self.dropout = variant, hidden_size, num_layers, dropout
        gh = GATE_BLOCKS[variant] * hidden_size
        for k in range(num_layers):
            n_in = input_size if k == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{k}", nn.Parameter(torch.empty(gh, n_in)))
            self.register_parameter(f"weight_hh_l{k}", nn.Parameter(torch.empty(gh, hidden_size)))
            self.register_parameter(f"bias_ih_l{k}", nn.Parameter(torch.empty(gh)))
            self.register_parameter(f"bias_hh_l{k}", nn.Parameter(torch.empty(gh)))
            if variant == "peephole":  # rows: input, forget, output gate
                self.register_parameter(f"weight_ch_l{k}", nn.Parameter(torch.empty(3, hidden_size)))
        bound = 1.0 / math.sqrt(hidden_size)  # nn.LSTM's initialisation
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def layer_weights(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(w_ih, w_hh, b_ih, b_hh, peepholes or None)`` of layer ``k``."""
        peep = getattr(self, f"weight_ch_l{k}", None)
        return (getattr(self, f"weight_ih_l{k}"), getattr(self, f"weight_hh_l{k}"),
                getattr(self, f"bias_ih_l{k}"), getattr(self, f"bias_hh_l{k}"), peep)

    @property
    def _acc(self) -> torch.dtype:
        """The state's dtype: float32 at least, so bf16 autocast never rounds the cell state."""
        return torch.promote_types(self.weight_ih_l0.dtype, torch.float32)

    def _initial(self, x: torch.Tensor, state):
        if state is not None:
            return state
        z = x.new_zeros(self.num_layers, x.size(0), self.hidden_size, dtype=self._acc)
        return z, z.clone()

    def forward(self, x: torch.Tensor, state=None):
        out, state, _ = self._run(x, state, collect=False)
        return out, state

    def _run(self, x: torch.Tensor, state, collect: bool):
        h0, c0 = self._initial(x, state)
        hs, cs, traces = [], [], []
        for k in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh, peep = self.layer_weights(k)
            # the input projection of every step at once; only the recurrent product is per step
            xp = (torch.matmul(x, w_ih.t()) + (b_ih + b_hh)).to(self._acc)
            h, c, outs, gates = h0[k], c0[k], [], []
            for t in range(x.size(1)):
                pre = xp[:, t] + torch.matmul(h, w_hh.t()).to(self._acc)
                h, c, step_gates = variant_step(self.variant, pre, c, peep)
                outs.append(h)
                if collect:
                    gates.append((c, *step_gates))
            hs.append(h)
            cs.append(c)
            x = torch.stack(outs, dim=1)
            if collect:
                traces.append(_stack_trace(x[0], gates))
            if self.training and self.dropout and k < self.num_layers - 1:
                x = nn.functional.dropout(x, self.dropout, training=True)
        return x, (torch.stack(hs), torch.stack(cs)), traces


def _stack_trace(h: torch.Tensor, steps: list) -> dict[str, torch.Tensor]:
    """Per-step ``(c, i, f, g, o)`` of stream 0 -> ``{signal: (T, H)}``."""
    c, i, f, g, o = (torch.stack([s[j][0] for s in steps]) for j in range(5))
    return {"c": c, "h": h, "i": i, "f": f, "o": o, "g": g}


def _single_layers(rnn: nn.Module) -> list[nn.Module]:
    """One-layer modules sharing ``rnn``'s weights (no copies), to read every layer's outputs."""
    cached = getattr(rnn, "_charnn_single_layers", None)
    if cached is not None and all(m.weight_ih_l0 is getattr(rnn, f"weight_ih_l{k}") for k, m in enumerate(cached)):
        return cached
    kind = type(rnn)
    layers = []
    for k in range(rnn.num_layers):
        n_in = rnn.input_size if k == 0 else rnn.hidden_size
        extra = {"nonlinearity": rnn.nonlinearity} if kind is nn.RNN else {}
        m = kind(n_in, rnn.hidden_size, num_layers=1, batch_first=True, **extra).to(rnn.weight_ih_l0.device)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            setattr(m, f"{name}_l0", getattr(rnn, f"{name}_l{k}"))
        m.eval()
        layers.append(m)
    object.__setattr__(rnn, "_charnn_single_layers", layers)  # not a submodule: stays out of state_dict
    return layers


@torch.no_grad()
def trace(rnn: nn.Module, x: torch.Tensor, state=None):
    """Run the stack over one stream ``x`` (shape ``(1, T, input)``), in inference mode.

    Returns ``(top layer output (1, T, H), new state, [per layer {signal: (T, H)}])``: every signal
    of ``SIGNALS`` for the LSTM family, ``h`` alone for GRU and plain RNN.
    """
    if isinstance(rnn, StepwiseLSTM):
        return rnn._run(x, state, collect=True)
    is_lstm = isinstance(rnn, nn.LSTM)
    if state is None:
        z = x.new_zeros(rnn.num_layers, 1, rnn.hidden_size)
        state = (z, z.clone()) if is_lstm else z
    hs, cs, traces = [], [], []
    for k, layer in enumerate(_single_layers(rnn)):
        if is_lstm:
            h0, c0 = state[0][k : k + 1], state[1][k : k + 1]
            out, (hk, ck) = layer(x, (h0, c0))
            traces.append(lstm_gates(layer, x[0], out[0], h0[0, 0], c0[0, 0]))
            cs.append(ck[0])
        else:
            out, hk = layer(x, state[k : k + 1])
            traces.append({"h": out[0]})
        hs.append(hk[0])
        x = out
    new_state = (torch.stack(hs), torch.stack(cs)) if is_lstm else torch.stack(hs)
    return x, new_state, traces


def lstm_gates(layer: nn.LSTM, x: torch.Tensor, h: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor
               ) -> dict[str, torch.Tensor]:
    """An ``nn.LSTM`` layer's gates and cell states for the outputs ``h`` (T, H) it gave on ``x``.

    Every step's pre-activations depend only on x_t and h_{t-1}, both known, so all steps are one
    matrix product; the cell state is then the elementwise recurrence c_t = f c_{t-1} + i g.
    """
    h_prev = torch.cat([h0.unsqueeze(0), h[:-1]])
    pre = torch.addmm(layer.bias_ih_l0 + layer.bias_hh_l0, x, layer.weight_ih_l0.t())
    pre.addmm_(h_prev, layer.weight_hh_l0.t())
    i, f, g, o = pre.float().chunk(4, dim=1)  # PyTorch's gate order
    i, f, o, g = i.sigmoid(), f.sigmoid(), o.sigmoid(), g.tanh()
    ig = i * g
    c = torch.empty_like(ig)
    prev = c0.float()
    for t in range(c.size(0)):
        prev = torch.addcmul(ig[t], f[t], prev, out=c[t])
    return {"c": c, "h": h, "i": i, "f": f, "o": o, "g": g}


def step(rnn: nn.Module, cell: str, x: torch.Tensor, hs: list, cs: list | None) -> torch.Tensor:
    """One step of every layer for a batch ``x`` (B, input), updating ``hs``/``cs`` in place, with
    autograd (the slow, general path: gradient flow, tests); returns the top layer's h."""
    for k in range(len(hs)):
        if isinstance(rnn, StepwiseLSTM):
            w_ih, w_hh, b_ih, b_hh, peep = rnn.layer_weights(k)
            pre = torch.addmm(b_ih + b_hh, x, w_ih.t()) + hs[k] @ w_hh.t()
            hs[k], cs[k], _ = variant_step(rnn.variant, pre, cs[k], peep)
        else:
            w = [getattr(rnn, f"{n}_l{k}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            if cell == "lstm":
                hs[k], cs[k] = torch.lstm_cell(x, (hs[k], cs[k]), *w)
            elif cell == "gru":
                hs[k] = torch.gru_cell(x, hs[k], *w)
            else:
                hs[k] = torch.rnn_tanh_cell(x, hs[k], *w)
        x = hs[k]
    return x
