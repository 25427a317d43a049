"""One token at a time, as fast as the hardware allows: the inner loop of generation.

A generated character costs one step of the network plus one draw. At batch 1 on a
CPU both are dominated by fixed per-operation costs, not arithmetic, so
``Stepper`` does the least work per token that gives the same result as
``RNNLanguageModel.forward``:

* the weights are detached once (no autograd bookkeeping, no grad-mode switch
  per token) and the recurrent and output matrices are stored transposed,
  so each product is one ``addmm`` on contiguous memory;
* for a small vocabulary, the first layer's input projection is a lookup:
  ``embedding @ W_ih.T + b_ih + b_hh`` is computed once per token id, which
  removes a matrix-vector product from every step;
* the LSTM gates are computed in place from one sigmoid over all four;
* a draw at temperature T uses the Gumbel-max trick: ``argmax(logits / T + G)``
  with G standard Gumbel noise is a sample from ``softmax(logits / T)``. The
  1/T scale is folded into the output weights and the noise (drawn in blocks
  from the caller's generator) into the output bias, so the output layer and
  the draw are one ``addmm`` and one ``argmax``.

The peephole and coupled-gate LSTMs (models/cells.py) share the LSTM path (lookup table, folded
biases, transposed recurrent weights) and differ only in the cell step itself.

Inference only: dropout is not applied. The stepper holds views of the model's
weights as they were when it was made; make a new one after the weights change.
"""

from __future__ import annotations

import torch

from charnn.models.cells import LSTM_FAMILY, VARIANTS, variant_step

# build the first layer's lookup table when it costs at most this many multiply-adds
# (vocabulary x embedding x gates): ~67 M is a few milliseconds, paid once per generation
TABLE_MAX_MACS = 1 << 26
NOISE_BLOCK = 256  # steps of Gumbel noise drawn per call to the generator


class Stepper:
    def __init__(self, model, batch: int = 1, state=None):
        cfg = model.config
        self.cell, self.layers, self.hidden, self.batch = cfg.cell, cfg.layers, cfg.hidden, batch
        self.has_c = cfg.cell in LSTM_FAMILY
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        w = [[getattr(model.rnn, f"{n}_l{i}").detach() for n in names] for i in range(cfg.layers)]
        self.w_ih, self.w_hh, self.b_ih, self.b_hh = ([layer[j] for layer in w] for j in range(4))
        self.w_hh_t = [w.t().contiguous() for w in self.w_hh] if self.has_c else None
        self.peep = [model.rnn.layer_weights(i)[4] for i in range(cfg.layers)] if cfg.cell in VARIANTS else None
        if self.peep and self.peep[0] is not None:
            self.peep = [p.detach() for p in self.peep]
        self.embed = model.embed.weight.detach()
        self.head_w_t = model.head.weight.detach().t().contiguous()
        self.head_b = model.head.bias.detach()
        self.vocab_size = self.head_b.numel()
        self.table = None
        if self.has_c:
            # both biases folded into the per-layer input term (added once, not per step)
            self.bias = [self.b_ih[i] + self.b_hh[i] for i in range(cfg.layers)]
            e, g = self.embed.shape[1], self.w_ih[0].shape[0]
            if self.embed.shape[0] * e * g <= TABLE_MAX_MACS:
                self.table = torch.addmm(self.bias[0], self.embed, self.w_ih[0].t())
        self.set_state(state)
        self._scaled_for: float | None = None

    # -- state ------------------------------------------------------------------------
    def set_state(self, state) -> None:
        """Take a state in the model's format ((h, c) stacked by layer for LSTM, else h)."""
        if state is None:
            z = self.embed.new_zeros(self.batch, self.hidden)
            self.h = [z.clone() for _ in range(self.layers)]
            self.c = [z.clone() for _ in range(self.layers)] if self.has_c else None
            return
        h = state[0] if self.has_c else state
        self.h = [h[i].detach().clone() for i in range(self.layers)]
        self.c = [state[1][i].detach().clone() for i in range(self.layers)] if self.has_c else None

    @property
    def state(self):
        """The state in the model's format, for ``forward`` or ``step``."""
        h = torch.stack(self.h)
        return (h, torch.stack(self.c)) if self.has_c else h

    # -- the network ------------------------------------------------------------------
    def advance(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed ``tokens`` (shape ``(batch,)``); returns the top layer's output ``(batch, hidden)``."""
        if self.cell in VARIANTS:
            return self._advance_variant(tokens)
        if self.cell != "lstm":
            return self._advance_cell(tokens)
        H = self.hidden
        x = None
        for i in range(self.layers):
            if i == 0 and self.table is not None:
                pre = self.table.index_select(0, tokens)
            else:
                inp = self.embed.index_select(0, tokens) if i == 0 else x
                pre = torch.addmm(self.bias[i], inp, self.w_ih[i].t())
            gates = pre.addmm_(self.h[i], self.w_hh_t[i])
            s = gates.sigmoid()
            g = gates[:, 2 * H : 3 * H].tanh_()
            c = torch.addcmul(s[:, H : 2 * H] * self.c[i], s[:, :H], g)
            x = s[:, 3 * H :] * torch.tanh(c)
            self.h[i], self.c[i] = x, c
        return x

    def _advance_cell(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed.index_select(0, tokens)
        fn = torch.gru_cell if self.cell == "gru" else torch.rnn_tanh_cell
        for i in range(self.layers):
            x = fn(x, self.h[i], self.w_ih[i], self.w_hh[i], self.b_ih[i], self.b_hh[i])
            self.h[i] = x
        return x

    def _advance_variant(self, tokens: torch.Tensor) -> torch.Tensor:
        x = None
        for i in range(self.layers):
            if i == 0 and self.table is not None:
                pre = self.table.index_select(0, tokens)
            else:
                inp = self.embed.index_select(0, tokens) if i == 0 else x
                pre = torch.addmm(self.bias[i], inp, self.w_ih[i].t())
            pre = pre.addmm_(self.h[i], self.w_hh_t[i])
            x, self.c[i], _ = variant_step(self.cell, pre, self.c[i], self.peep[i])
            self.h[i] = x
        return x

    def logits(self, top: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.head_b, top, self.head_w_t)

    # -- drawing ------------------------------------------------------------------------
    def sample(self, top: torch.Tensor, temperature: float, generator: torch.Generator | None) -> torch.Tensor:
        """A draw from ``softmax(logits / temperature)`` for each stream (no top-k / top-p)."""
        if self._scaled_for != temperature:
            self._scaled_for = temperature
            self._w_scaled = self.head_w_t / temperature
            self._b_scaled = self.head_b / temperature
            self._noise_left = 0
        if self._noise_left == 0:
            # noise + bias for the next NOISE_BLOCK steps: G = -log(E), E ~ Exp(1)
            noise = torch.empty(NOISE_BLOCK, self.batch, self.vocab_size, device=self.head_b.device)
            noise.exponential_(generator=generator).log_().neg_().add_(self._b_scaled)
            self._noise, self._noise_left = noise, NOISE_BLOCK
        bias = self._noise[NOISE_BLOCK - self._noise_left]
        self._noise_left -= 1
        return torch.addmm(bias, top, self._w_scaled).argmax(dim=-1)
