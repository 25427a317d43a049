"""Settings as dataclasses: what the model is, how it trains, how it samples.

Each is a plain dataclass so it can be stored inside a checkpoint as a dict
(``asdict``) and rebuilt from one (``from_dict``) without pickling code.

A run's defaults are not here: ``charnn.presets`` sets every size, rate and
budget of a `charnn train` run. The values below are what a bare
``RunSettings()`` gets (tests, benchmarks) and what an old checkpoint that
lacks a field reads back.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any


class _DictMixin:
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class ModelConfig(_DictMixin):
    """A stacked recurrent language model: embedding -> RNN x layers -> linear."""

    vocab_size: int = 0
    cell: str = "lstm"  # lstm | gru | rnn | peephole | cifg
    layers: int = 2
    hidden: int = 512
    embedding: int = 0  # 0: "same as hidden" in a saved config; a new LM run fills in presets.auto_embedding
    dropout: float = 0.0
    tie_weights: bool = False

    @property
    def embedding_dim(self) -> int:
        return self.embedding or self.hidden


MAX_BATCH_SIZE = MAX_SEQ_LEN = 65536  # the largest --batch-size / --seq-len a run accepts


@dataclass
class TrainConfig(_DictMixin):
    """How a run trains. Budgets: whichever of steps / time / epochs comes first."""

    batch_size: int = 32  # parallel contiguous streams
    seq_len: int = 128  # truncated-BPTT window
    lr: float = 3e-3
    min_lr_ratio: float = 0.1  # decay ends at lr * min_lr_ratio
    warmup_steps: int = 50
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema: float = 0.999  # decay of the weight average that becomes the final model (0 = off)
    steps: int = 0  # 0 = no step budget
    time_s: float = 0.0  # 0 = no wall-clock budget
    epochs: float = 0.0  # 0 = no epoch budget
    val_fraction: float = 0.1
    eval_every: int = 0  # 0 = pick from the budget
    eval_tokens: int = 32768  # periodic evaluations read at most this much of val (the final one all of it)
    sample_every: int = 0  # 0 = with every evaluation
    sample_length: int = 200
    patience: int = 0  # stop after this many evaluations without improvement (0 = never)
    seed: int = 1337
    device: str = "auto"
    threads: int = 0  # CPU threads, 0 = pick
    bf16: bool = True  # autocast on CUDA
    teacher_forcing: str = "1"  # chat: a ratio or a scheduled-sampling schedule (training/teacher_forcing.py)


@dataclass
class SampleConfig(_DictMixin):
    """How text is drawn from a model."""

    temperature: float = 0.8
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1.0 = off
    length: int = 500
    prime: str = ""
    seed: int | None = None
    num_samples: int = 1


@dataclass
class TokenizerConfig(_DictMixin):
    kind: str = "char"  # char | bpe | unigram
    vocab_size: int = 0  # subword only


@dataclass
class ChatSettings(_DictMixin):
    """How a chat model reads its context and what its training loss weighs (``--mode chat`` only)."""

    encoder: str = "flat"  # flat | hred (charnn.models.hred)
    start_marker: bool = True  # <start> before contexts that open a conversation
    context_dropout: float = 0.0  # share of examples whose context is cut to fewer of its recent turns
    label_smoothing: float = 0.0
    generic_weight: float = 1.0  # loss weight of generic replies (chat_batches.generic_weights); 1: off


@dataclass
class RunSettings(_DictMixin):
    """Everything ``charnn train`` was asked for; stored in the checkpoint."""

    corpus: str = ""
    mode: str = "lm"  # lm | chat
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    chat: ChatSettings = field(default_factory=ChatSettings)
    encoding: str = "utf-8"
    errors: str = "strict"
    init_from: str = ""  # the checkpoint a fine-tuned run started from (--init-from); "" for a new model

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSettings:
        return cls(
            corpus=data.get("corpus", ""),
            mode=data.get("mode", "lm"),
            model=ModelConfig.from_dict(data.get("model", {})),
            train=TrainConfig.from_dict(data.get("train", {})),
            tokenizer=TokenizerConfig.from_dict(data.get("tokenizer", {})),
            chat=ChatSettings.from_dict(data.get("chat", {})),
            encoding=data.get("encoding", "utf-8"),
            errors=data.get("errors", "strict"),
            init_from=data.get("init_from") or "",
        )


def parse_duration(text: str) -> float:
    """'90', '90s', '5m', '1h30m' -> seconds; ValueError with a message for anything else."""
    m = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text)
    if not text.strip() or not m or not any(m.groups()):
        raise ValueError(f"not a duration: {text!r} (try 90, 90s, 5m or 1h)")
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s
