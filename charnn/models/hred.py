"""The hierarchical encoder of a chat model (HRED: Serban et al. 2016, "Building End-To-End Dialogue
Systems Using Generative Hierarchical Neural Network Models").

The flat context (turn_1 <sep> turn_2 <sep> ...) is cut at its separators into
one row per turn; the chat model's bidirectional word encoder reads each turn on
its own, a turn's vector is its two directions' ends, and a context RNN reads
the turn vectors in order. Its last state is the conversation so far: it starts
the decoder (through the bridge) and is fed to it with every token. Each word's
state plus its turn's context state is what attention reads.

Turns are padded on the right inside the turn grid and rows on the right after
their last turn, so padding never reaches a real position (the unidirectional
context RNN reads padded turns only after the real ones).
"""

from __future__ import annotations

import torch
from torch import nn


class ContextReader(nn.Module):
    """The context RNN: an LSTM over turn vectors, as wide as they are."""

    def __init__(self, width: int):
        super().__init__()
        self.rnn = nn.LSTM(width, width, batch_first=True)

    def forward(self, turns: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(turns)
        return out


def turn_grid(context: torch.Tensor, mask: torch.Tensor, sep_id: int):
    """Where each real token sits when the context is cut into turns at its separators (each separator ends
    its turn): per token its turn and position in it (B x S), the turns' lengths (B x N) and count (B)."""
    is_sep = ((context == sep_id) & mask).long()
    turn = is_sep.cumsum(1) - is_sep
    turn = torch.where(mask, turn, torch.zeros_like(turn))
    n_turns = turn.masked_fill(~mask, -1).amax(1) + 1
    n = int(n_turns.max())
    lengths = torch.zeros(context.size(0), n, dtype=torch.long, device=context.device)
    lengths.scatter_add_(1, turn, mask.long())
    starts = lengths.cumsum(1) - lengths
    pos = torch.arange(context.size(1), device=context.device).unsqueeze(0) - starts.gather(1, turn)
    return turn, pos, lengths, n_turns


def read_hierarchically(model: nn.Module, context: torch.Tensor, x: torch.Tensor, mask: torch.Tensor):
    """Attention values (B x S x 2He: each word's state plus its turn's context state) and the context
    summary (B x 2He: the context RNN after the last turn), from embedded context ``x`` (B x S x E);
    ``model`` is the Seq2SeqModel (its word encoder ``read_words`` and context RNN ``hred``)."""
    b, s, e = x.shape
    turn, pos, lengths, n_turns = turn_grid(context, mask, model.config.sep_id)
    n, width = lengths.size(1), int(lengths.max())
    slot = ((torch.arange(b, device=x.device).unsqueeze(1) * n + turn) * width + pos)[mask]
    grid = x.new_zeros(b * n * width, e)
    grid[slot] = x[mask]
    words = model.read_words(grid.view(b * n, width, e), lengths.view(-1).clamp(min=1))
    he = words.size(-1) // 2
    ends = (lengths.view(-1) - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, he)
    turn_vectors = torch.cat([words[:, :, :he].gather(1, ends).squeeze(1), words[:, 0, he:]], dim=-1)
    states = model.hred(turn_vectors.view(b, n, 2 * he))  # B x N x 2He
    values = x.new_zeros(b, s, 2 * he)
    values[mask] = words.reshape(-1, 2 * he)[slot]
    values = values + states.gather(1, turn.unsqueeze(-1).expand(-1, -1, 2 * he)) * mask.unsqueeze(-1)
    last = (n_turns - 1).view(b, 1, 1).expand(-1, 1, 2 * he)
    return values, states.gather(1, last).squeeze(1)
