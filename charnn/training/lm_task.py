"""The language-model task: what the trainer needs to train a stacked RNN on a corpus.

A task owns its data and model and answers four questions for the trainer:
the loss of training step N, the validation loss, a sample to show, and the
state to put in a checkpoint. The chat task (seq2seq) answers the same ones,
so one trainer serves both.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from charnn.config import ModelConfig, RunSettings
from charnn.decoding.sampling import default_start, generate_ids, stream_text
from charnn.errors import CharnnError
from charnn.models.lm import RNNLanguageModel, detach_state, state_from_list, state_to_list
from charnn.presets import auto_embedding
from charnn.scoring.streams import score_stream
from charnn.text.dataset import StreamBatcher, TokenizedCorpus, fit_batch_shape, load_corpus
from charnn.text.tokenizers import Tokenizer

LN2 = math.log(2.0)
# the closing score in a few long streams: each starts blank, so few cost little (benchmarks/README.md)
FINAL_EVAL_STREAMS, FINAL_EVAL_WINDOW = 4, 256


class LMTask:
    """The ``Task`` (charnn.training.task) of a language model."""

    kind = "lm"
    teacher_forcing: float | None = None  # a language model is always fed the text

    def __init__(self, settings: RunSettings, device: torch.device, rank: int = 0, world: int = 1,
                 tokenizer: Tokenizer | None = None, model_config: dict | None = None):
        self.settings = settings
        self.device = device
        self.notices: list[str] = []
        tc = settings.train
        corpus: TokenizedCorpus = load_corpus(
            settings.corpus, settings.tokenizer, settings.encoding, settings.errors, tokenizer=tokenizer
        )
        self.corpus = corpus
        self.tokenizer = corpus.tokenizer
        train, val = corpus.split(tc.val_fraction)
        if len(val) < 2:
            raise CharnnError(
                f"The corpus is too small for a validation split ({len(corpus.tokens)} tokens, "
                f"{tc.val_fraction:.0%} held out); give more text or a larger --val-fraction."
            )
        b, t, note = fit_batch_shape(len(train), tc.batch_size, tc.seq_len)
        if note:
            self.notices.append(note)
            tc.batch_size, tc.seq_len = b, t
        b -= b % world
        if b < world:
            raise CharnnError(f"The corpus is too short to split across {world} processes.")
        tc.batch_size = b
        self.train_tokens, self.val_tokens = train, val
        self.rank, self.world = rank, world
        self.batcher = StreamBatcher(train, b, t, rank, world)
        self.char_lengths = corpus.tokenizer.char_lengths()
        self.train_chars_per_token = float(self.char_lengths[np.asarray(train[: 1 << 20], dtype=np.int64)].mean())
        self.tokens_per_step = b * t  # global, all ranks
        cfg = ModelConfig.from_dict(model_config) if model_config else settings.model
        cfg.vocab_size = corpus.tokenizer.vocab_size
        if not model_config and not cfg.embedding and not cfg.tie_weights:
            cfg.embedding = auto_embedding(cfg.hidden, cfg.vocab_size)
        self.model_config = cfg
        self.model = RNNLanguageModel(cfg).to(device)
        self.state = None  # carried hidden state of this rank's streams

    # -- training -------------------------------------------------------------
    def train_loss(self, model, step: int) -> torch.Tensor:
        x, y, reset = self.batcher.window(step)
        if reset:
            self.state = None
        xb = torch.from_numpy(x).to(self.device, non_blocking=True)
        yb = torch.from_numpy(y).to(self.device, non_blocking=True)
        _, loss, state = model(xb, yb, self.state)
        self.state = detach_state(state)
        return loss

    def shrink_batch(self) -> int | None:
        """Halve the parallel streams after running out of memory; None when already at one per rank."""
        b = self.batcher.batch_size // 2
        b -= b % self.world
        if b < self.world:
            return None
        t = self.batcher.seq_len
        self.batcher = StreamBatcher(self.train_tokens, b, t, self.rank, self.world)
        self.settings.train.batch_size = b
        self.tokens_per_step = b * t
        self.state = None
        return b

    @property
    def windows(self) -> int:
        return self.batcher.windows

    def check_batch_fits(self) -> None:
        from charnn.training import memory

        mc, tc = self.model_config, self.settings.train
        memory.check_batch_fits(self.model, mc.cell, mc.layers, mc.hidden, mc.embedding_dim,
                                self.tokenizer.vocab_size, tc.batch_size // self.world, tc.seq_len, self.device)

    def epoch(self, step: int) -> float:
        return self.batcher.epoch(step)

    def bpc(self, nats_per_token: float, chars_per_token: float | None = None) -> float:
        cpt = chars_per_token or self.train_chars_per_token
        return nats_per_token / LN2 / max(cpt, 1e-9)

    # -- evaluation -----------------------------------------------------------
    def evaluate(self, model, max_tokens: int, final: bool = False) -> tuple[float, float]:
        """Validation loss (nats/token) and bits per character, state carried across windows;
        ``final``: the run's closing score, in a few long streams (as ``charnn eval`` scores a text)."""
        val = self.val_tokens[:max_tokens] if max_tokens else self.val_tokens
        tc = self.settings.train
        streams, window = (FINAL_EVAL_STREAMS, FINAL_EVAL_WINDOW) if final else (tc.batch_size, tc.seq_len)
        return score_stream(model, val, self.char_lengths, streams, window, self.device, tc.bf16)

    def sample(self, model, step: int, length: int, seed: int) -> str:
        """The same prime and seed at every step, so a run's samples are one text getting better."""
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed)
        was_training = model.training
        model.eval()
        try:
            ids = generate_ids(model, default_start(self.tokenizer), length, 0.8, 0, 1.0, gen, self.device)
            return "".join(stream_text(ids, self.tokenizer))
        finally:
            model.train(was_training)

    # -- checkpoint state -------------------------------------------------------
    def state_dict(self) -> dict:
        return {"hidden": state_to_list(self.state)}

    def load_state_dict(self, state: dict) -> None:
        self.state = state_from_list(list(state.get("hidden", [])), self.device)

    def summary(self) -> dict:
        return {
            "train_tokens": len(self.train_tokens),
            "val_tokens": len(self.val_tokens),
            "corpus_sha256": self.corpus.info.sha256,
        }
