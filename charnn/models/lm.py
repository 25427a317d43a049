"""A stacked recurrent language model (char-rnn / word_language_model shape).

tokens -> embedding -> dropout -> {LSTM, GRU, RNN, peephole / CIFG LSTM} x layers (dropout between)
       -> dropout -> linear -> logits over the vocabulary

``forward(idx, targets=None, state=None) -> (logits, loss, state)``: the state
is returned so the caller can carry it across truncated-BPTT windows, and
sampling feeds one token at a time at constant cost. Weight tying (Press &
Wolf 2017, Inan et al. 2017) shares the embedding with the output layer. The
LSTM variants of ``--cell peephole`` and ``--cell cifg`` run step by step (models/cells.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from charnn.config import ModelConfig
from charnn.errors import CharnnError
from charnn.models.cells import VARIANTS, StepwiseLSTM

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]
CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN, **{v: StepwiseLSTM for v in VARIANTS}}


class RNNLanguageModel(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.cell not in CELLS:
            raise CharnnError(f"Unknown --cell {config.cell!r}; use lstm, gru, rnn, peephole or cifg.")
        if config.tie_weights and config.embedding_dim != config.hidden:
            raise CharnnError("--tie-weights needs --embedding equal to --hidden (or left at 0).")
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embedding_dim)
        self.drop = nn.Dropout(config.dropout)
        kwargs = {"nonlinearity": "tanh"} if config.cell == "rnn" else {}
        if config.cell in VARIANTS:
            kwargs = {"variant": config.cell}
        self.rnn = CELLS[config.cell](
            config.embedding_dim,
            config.hidden,
            num_layers=config.layers,
            dropout=config.dropout if config.layers > 1 else 0.0,
            batch_first=True,
            **kwargs,
        )
        self.head = nn.Linear(config.hidden, config.vocab_size)
        if config.tie_weights:
            self.head.weight = self.embed.weight
        self._init_weights()

    def _init_weights(self) -> None:
        # unit-variance embeddings give the gates a strong input signal from step one
        # (0.1 learned ~0.3 bits/char slower over the first 600k tokens, benchmarks in the log);
        # tied weights double as output weights, where that scale would saturate the softmax
        # (an embedding narrower than the hidden size gets a proportionally larger scale, so the
        # gates' pre-activations start with the same variance as at embedding == hidden)
        cfg = self.config
        std = 0.05 if cfg.tie_weights else (cfg.hidden / cfg.embedding_dim) ** 0.5
        nn.init.normal_(self.embed.weight, std=std)
        nn.init.zeros_(self.head.bias)
        if self.config.cell in ("lstm", *VARIANTS):
            # forget-gate bias of 1 (Jozefowicz et al. 2015) helps early learning
            h = self.config.hidden
            f = slice(0, h) if self.config.cell == "cifg" else slice(h, 2 * h)  # cifg's blocks: f g o
            for name, p in self.rnn.named_parameters():
                if name.startswith("bias_ih"):
                    with torch.no_grad():
                        p[f].fill_(1.0)
                elif name.startswith("bias_hh"):
                    with torch.no_grad():
                        p[f].fill_(0.0)

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        state: State | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, State]:
        x = self.drop(self.embed(idx))
        out, state = self.rnn(x, state)
        logits = self.head(self.drop(out))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1))
        return logits, loss, state

    def stepper(self, batch: int = 1, state: State | None = None):
        """A ``Stepper`` over this model's current weights: the fast path for generation."""
        from charnn.models.stepper import Stepper

        return Stepper(self, batch, state)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def detach_state(state: State | None) -> State | None:
    """Cut the graph between truncated-BPTT windows, keeping the values."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)  # type: ignore[return-value]
    return state.detach()


def state_to_list(state: State | None) -> list[torch.Tensor]:
    if state is None:
        return []
    return [s.detach().cpu() for s in state] if isinstance(state, tuple) else [state.detach().cpu()]


def state_from_list(items: list[torch.Tensor], device: torch.device) -> State | None:
    if not items:
        return None
    if len(items) == 2:
        return (items[0].to(device), items[1].to(device))
    return items[0].to(device)
