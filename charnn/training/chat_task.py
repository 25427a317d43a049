"""The chat task: what the trainer needs to train a seq2seq model on dialogues.

It answers the same questions as ``LMTask`` (the loss of step N, the
validation loss, a sample to show, its checkpoint state), so the one trainer
serves both. Examples are (the previous K turns, the next turn); the held-out
examples are those of the last ``val_fraction`` of the conversations. The
examples and their length-bucketed batches are ``charnn.text.chat_batches``;
replies are decoded by ``charnn.decoding.replies`` and scored by
``charnn.scoring.replies``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from charnn.config import RunSettings
from charnn.decoding.replies import format_exchange, generate_reply
from charnn.errors import CharnnError
from charnn.models.seq2seq import Seq2SeqConfig, Seq2SeqModel
from charnn.scoring.replies import EVAL_REPLY_TOKENS, score_examples
from charnn.text.chat_batches import (
    BucketBatcher,
    DialogueExamples,
    fit_chat_tokenizer,
    generic_weights,
    padding_waste,
    special_ids,
)
from charnn.text.dialogue import read_dialogues, split_conversations
from charnn.text.tokenizers import Tokenizer
from charnn.training.teacher_forcing import parse_teacher_forcing

LN2 = math.log(2.0)
# a chat token costs several LM tokens to score (its context is read too), so evaluations read at most
# this many characters of held-out replies
MAX_EVAL_CHARS = 131072
MIN_MID_SHARE = 0.25  # below this share of contexts that begin mid-conversation, conversation starts go unmarked


def model_config_from_settings(settings: RunSettings, tokenizer: Tokenizer) -> Seq2SeqConfig:
    from charnn.presets import CHAT_DEFAULTS

    m, t = settings.model, settings.train
    ids = special_ids(tokenizer)
    if not settings.chat.start_marker:
        ids["start_id"] = -1
    return Seq2SeqConfig(
        vocab_size=tokenizer.vocab_size, hidden=m.hidden, layers=m.layers,
        encoder_layers=CHAT_DEFAULTS.get("encoder_layers", 1), embedding=m.embedding,
        dropout=m.dropout, tie_weights=m.tie_weights, cell=m.cell,
        context_turns=CHAT_DEFAULTS.get("context_turns", 3),
        max_reply_tokens=t.seq_len, max_context_tokens=2 * t.seq_len,
        encoder=settings.chat.encoder, **ids,
    )


def weighted_loss(logits: torch.Tensor, targets: torch.Tensor, pad_id: int, weights: torch.Tensor | None = None,
                  label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean loss over non-pad targets, each example's tokens weighted by ``weights`` (B) when given."""
    import torch.nn.functional as F

    loss = F.cross_entropy(logits.transpose(1, 2).float(), targets, ignore_index=pad_id, reduction="none",
                           label_smoothing=label_smoothing)
    real = (targets != pad_id).float()
    if weights is not None:
        real = real * weights.unsqueeze(1)
    return (loss * real).sum() / real.sum().clamp(min=1e-6)


class ChatTask:
    """The ``Task`` (charnn.training.task) of a seq2seq chat model."""

    kind = "chat"

    def __init__(self, settings: RunSettings, device: torch.device, rank: int = 0, world: int = 1,
                 tokenizer: Tokenizer | None = None, model_config: dict | None = None):
        from charnn.text.corpus import check_readable, hash_file

        self.settings = settings
        self.device = device
        self.notices: list[str] = []
        tc = settings.train
        path = check_readable(settings.corpus)
        self.corpus_sha256 = hash_file(path).sha256
        conversations = read_dialogues(path, settings.encoding, settings.errors)
        train_convs, val_convs = split_conversations(conversations, tc.val_fraction)
        if not val_convs:
            raise CharnnError(f"{path} has only {len(conversations)} conversation(s); a chat model needs at "
                              f"least two (one is held out to measure it), separated by a blank line.")
        self.tokenizer = tokenizer or fit_chat_tokenizer(conversations, settings.tokenizer)
        if model_config:
            cfg = Seq2SeqConfig.from_dict(model_config)
        else:
            cfg = model_config_from_settings(settings, self.tokenizer)
        cfg.vocab_size = self.tokenizer.vocab_size
        if not model_config and cfg.start_id >= 0 and _mid_share(train_convs, cfg.context_turns) < MIN_MID_SHARE:
            cfg.start_id = -1  # nearly every context opens its conversation: a fresh chat must look like them
            self.notices.append("Conversations are too short to learn replies met mid-conversation; "
                                "no <start> marker.")
        self.model_config = cfg
        self.train_examples = DialogueExamples(train_convs, self.tokenizer, cfg)
        self.val_examples = DialogueExamples(val_convs, self.tokenizer, cfg, EVAL_REPLY_TOKENS)
        b = min(tc.batch_size, len(self.train_examples))
        b -= b % world
        if b < 1:
            raise CharnnError(f"There are too few training examples ({len(self.train_examples)}) to split "
                              f"across {world} processes.")
        if b != tc.batch_size:
            self.notices.append(f"Few examples: using --batch-size {b}.")
            tc.batch_size = b
        self.batcher = BucketBatcher(self.train_examples, b, tc.seed, rank, world)
        self.rank, self.world = rank, world
        ex = self.train_examples
        self.train_chars_per_token = float(ex.chars.sum() / max(ex.target_tokens(), 1))
        self.tokens_per_step = int(ex.rep_len[self.batcher.global_batch(0)].sum())
        waste = padding_waste(ex, self.batcher.plan(0))
        self.notices.append(
            f"{len(conversations)} conversations: {len(ex)} training and {len(self.val_examples)} held-out "
            f"replies, each read with up to {cfg.context_turns} previous turns by the {cfg.encoder} encoder; "
            f"batches bucketed by length ({waste['total']:.0%} padding)."
        )
        if ex.eos_cut:
            self.notices.append(f"{ex.eos_cut} training replies are longer than {cfg.max_reply_tokens} tokens "
                                f"and are cut (--seq-len sets the limit).")
        self.schedule = parse_teacher_forcing(tc.teacher_forcing)
        if not self.schedule.always:
            self.notices.append(f"Training with {self.schedule.describe()} (--teacher-forcing "
                                f"{self.schedule}); evaluation stays teacher-forced.")
        # the ratio of the last training step, for progress displays; None under plain teacher forcing
        self.teacher_forcing: float | None = None if self.schedule.always else self.schedule.ratio(0)
        self.levers = settings.chat
        self.weights = None
        if self.levers.generic_weight < 1.0:
            self.weights = generic_weights(train_convs, self.levers.generic_weight)
            self.notices.append(f"{int((self.weights < 1).sum())} generic training replies weigh "
                                f"{self.levers.generic_weight:g} (--generic-weight).")
        self.model = Seq2SeqModel(cfg).to(device)
        self._sample_example = _pick_sample_example(self.val_examples)

    # -- training -------------------------------------------------------------
    def _tensors(self, examples: DialogueExamples, index: np.ndarray, drop_context: bool = False):
        arrays = examples.batch(index, drop_context)
        return [torch.from_numpy(a).to(self.device, non_blocking=True) for a in arrays]

    def _keep_turns(self, index: np.ndarray, step: int) -> np.ndarray | None:
        """Context dropout: per example, how many recent turns it keeps (a function of the step and seed).

        A dropped example keeps 0 to all-but-one of its turns, uniformly: with some it reads like a
        conversation met in the middle (no <start>), and with none it is the context-free reply the
        anti-LM and PMI scoring ask the same decoder for (a lone <sep>; as classifier-free guidance
        trains its unconditional model), so p(reply | no context) is learned, not extrapolated. An
        opening (no turns before it) keeps its <start>.
        """
        p = self.levers.context_dropout
        if not p:
            return None
        ex = self.train_examples
        rng = np.random.default_rng([self.settings.train.seed, step, self.rank, 7])
        turns = ex.reply[index] - ex.first[index]
        cut = (rng.random(len(index)) < p) & (turns >= 1)
        return np.where(cut, rng.integers(0, np.maximum(turns, 1)), turns)

    def train_loss(self, model, step: int) -> torch.Tensor:
        index = self.batcher.local_batch(step)
        self.tokens_per_step = int(self.train_examples.rep_len[self.batcher.global_batch(step)].sum())
        arrays = self.train_examples.batch(index, keep_turns=self._keep_turns(index, step))
        ctx, lengths, rin, tgt = (torch.from_numpy(a).to(self.device, non_blocking=True) for a in arrays)
        ratio = self.schedule.ratio(step)
        if not self.schedule.always:
            self.teacher_forcing = ratio
        if ratio >= 1.0:
            logits, _ = model(ctx, lengths, rin)
        else:  # the model's own samples at a step are a function of the step, so a resumed run redraws them
            gen = torch.Generator(device=self.device)
            gen.manual_seed(int(np.random.SeedSequence([self.settings.train.seed, step, self.rank])
                                .generate_state(1)[0]))
            logits, _ = model(ctx, lengths, rin, teacher_forcing=ratio, generator=gen)
        weights = None if self.weights is None else torch.from_numpy(self.weights[index]).to(self.device)
        return weighted_loss(logits, tgt, self.model_config.pad_id, weights, self.levers.label_smoothing)

    def teacher_forcing_at(self, step: int) -> float:
        """The teacher-forcing ratio training step ``step`` uses (1 = the gold reply at every position)."""
        return self.schedule.ratio(step)

    def shrink_batch(self) -> int | None:
        """Halve the batch after running out of memory; None when already at one example per rank."""
        b = self.batcher.batch_size // 2
        b -= b % self.world
        if b < self.world:
            return None
        self.batcher = BucketBatcher(self.train_examples, b, self.settings.train.seed, self.rank, self.world)
        self.settings.train.batch_size = b
        return b

    @property
    def windows(self) -> int:
        return self.batcher.windows

    def check_batch_fits(self) -> None:
        pass  # batches vary in size; running out of memory halves them (shrink_batch)

    def epoch(self, step: int) -> float:
        return self.batcher.epoch(step)

    def bpc(self, nats_per_token: float, chars_per_token: float | None = None) -> float:
        cpt = chars_per_token or self.train_chars_per_token
        return nats_per_token / LN2 / max(cpt, 1e-9)

    # -- evaluation -----------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, model, max_tokens: int, drop_context: bool = False, final: bool = False) -> tuple[float, float]:
        """Held-out reply loss (nats/token) and bits per character of the first ``max_tokens`` reply characters
        (every reply is scored on its own, so a closing score, ``final``, is scored the same way)."""
        max_chars = min(max_tokens or MAX_EVAL_CHARS, MAX_EVAL_CHARS)
        return score_examples(model, self.val_examples, self.device, max_chars, drop_context,
                              self.settings.train.bf16)

    def sample(self, model, step: int, length: int, seed: int) -> str:
        """The same prime and seed at every step, so a run's samples are one text getting better."""
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed)
        i = self._sample_example
        turns = [self.tokenizer.decode(t.tolist()) for t in self.val_examples.context_of(i)]
        was_training = model.training
        model.eval()
        try:
            reply = "".join(generate_reply(model, self.tokenizer, turns, max_length=length, temperature=0.8,
                                           generator=gen, device=self.device))
        finally:
            model.train(was_training)
        return format_exchange(turns, reply)

    # -- checkpoint state -------------------------------------------------------
    def state_dict(self) -> dict:
        return {}  # the batch of a step is a function of the step and the seed

    def load_state_dict(self, state: dict) -> None:
        pass

    def summary(self) -> dict:
        return {
            "train_tokens": self.train_examples.target_tokens(),
            "val_tokens": self.val_examples.target_tokens(),
            "train_examples": len(self.train_examples),
            "val_examples": len(self.val_examples),
            "corpus_sha256": self.corpus_sha256,
        }


def _mid_share(conversations, context_turns: int) -> float:
    """The share of examples whose context begins mid-conversation (after the first turn)."""
    total = sum(len(c) for c in conversations)
    return sum(max(0, len(c) - context_turns - 1) for c in conversations) / max(total, 1)


def _pick_sample_example(examples: DialogueExamples) -> int:
    """A fixed held-out example to show samples for: the first with two or more turns of context."""
    has_context = np.nonzero(examples.reply - examples.first >= 2)[0]
    return int(has_context[0]) if len(has_context) else 0
