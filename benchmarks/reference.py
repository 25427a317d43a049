"""The plain reference: the simplest honest PyTorch LSTM language model loop, the baseline that
issue 6's targets name. nn.Embedding as wide as the hidden size, nn.LSTM, a linear head; Adam
(PyTorch's default implementation), truncated BPTT with the state carried between windows,
gradient clipping at 5 (char-rnn's), fp32, no other tricks.

`time_to_quality.py` trains it for a wall-clock budget (char-rnn's default size, 2 x 128, batch
50 x 50); `throughput.py` times its step at charnn's sizes. One definition serves both, so the
loop whose quality is compared is the loop whose speed is compared.
"""

from __future__ import annotations

import torch
from torch import nn

from charnn.text.dataset import StreamBatcher


class PlainLM(nn.Module):
    def __init__(self, vocab: int, layers: int, hidden: int):
        super().__init__()
        self.emb = nn.Embedding(vocab, hidden)
        self.rnn = nn.LSTM(hidden, hidden, layers, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, x, targets=None, state=None):
        h, state = self.rnn(self.emb(x), state)
        return self.out(h), None, state


class PlainTrainer:
    """One training step at a time over ``tokens`` read as ``batch`` contiguous streams."""

    def __init__(self, tokens, vocab: int, layers: int, hidden: int, batch: int, seq: int, lr: float,
                 device: torch.device):
        self.vocab, self.device = vocab, device
        self.model = PlainLM(vocab, layers, hidden).to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.batcher = StreamBatcher(tokens, batch, seq)
        self.state, self.steps = None, 0

    def train_step(self) -> None:
        x, y, reset = self.batcher.window(self.steps)
        if reset:
            self.state = None
        logits, _, state = self.model(torch.from_numpy(x).to(self.device), None, self.state)
        self.state = tuple(s.detach() for s in state)
        loss = nn.functional.cross_entropy(logits.reshape(-1, self.vocab),
                                           torch.from_numpy(y).to(self.device).reshape(-1))
        self.opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
        self.opt.step()
        self.steps += 1
