"""What the trainer needs of a task: its data, its model, and the answers about both.

Both tasks, ``LMTask`` (a stacked RNN reading a text) and ``ChatTask`` (a seq2seq model
reading conversations), implement this protocol in full, so the loop never asks which
one it holds.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

from charnn.config import RunSettings
from charnn.errors import CharnnError
from charnn.text.tokenizers import Tokenizer


class Task(Protocol):
    kind: str  # lm | chat
    model: torch.nn.Module
    model_config: Any  # ModelConfig | Seq2SeqConfig: to_dict() goes into the checkpoint
    tokenizer: Tokenizer
    notices: list[str]  # said once, after Start
    tokens_per_step: int  # all ranks together; a chat batch's varies with its replies
    teacher_forcing: float | None  # the last step's ratio; None when it is not scheduled
    windows: int  # training steps per epoch

    def train_loss(self, model: torch.nn.Module, step: int) -> torch.Tensor: ...

    def evaluate(self, model: torch.nn.Module, max_tokens: int, final: bool = False) -> tuple[float, float]:
        """Held-out loss (nats/token) and bits per character."""
        ...

    def sample(self, model: torch.nn.Module, step: int, length: int, seed: int) -> str: ...

    def bpc(self, nats_per_token: float) -> float: ...

    def epoch(self, step: int) -> float: ...

    def shrink_batch(self) -> int | None:
        """Halve the batch after running out of memory: the new size, or None at the smallest."""
        ...

    def check_batch_fits(self) -> None:
        """Refuse, in one sentence, a batch this device cannot hold."""
        ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...

    def summary(self) -> dict:
        """train_tokens, val_tokens and the corpus's sha256, for Start and the checkpoint."""
        ...


def make_task(settings: RunSettings, device: torch.device, rank: int, world: int,
              tokenizer: Tokenizer | None = None, model_config: dict | None = None) -> Task:
    """The task for ``settings.mode``; a resumed run passes its tokenizer and model config."""
    if settings.mode == "lm":
        from charnn.training.lm_task import LMTask

        return LMTask(settings, device, rank, world, tokenizer, model_config)
    if settings.mode == "chat":
        from charnn.training.chat_task import ChatTask

        return ChatTask(settings, device, rank, world, tokenizer, model_config)
    raise CharnnError(f"Unknown --mode {settings.mode!r}; use lm or chat.")


def check_model_fits(settings: RunSettings, model_config: dict | None, tokenizer: Tokenizer | None,
                     device: torch.device) -> None:
    """Before the text is read: refuse a language model too large for this device."""
    if settings.mode != "lm":
        return
    from charnn.config import ModelConfig
    from charnn.training import memory

    mc = ModelConfig.from_dict(model_config) if model_config else settings.model
    vocab = tokenizer.vocab_size if tokenizer else settings.tokenizer.vocab_size or 256
    memory.check_model_fits(mc.cell, mc.layers, mc.hidden, mc.embedding_dim, vocab, mc.tie_weights, device)
