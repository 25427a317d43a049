"""Every default of a run and the policy that chooses them, as plain functions.

The CLI parses flags into a dict and calls ``build_settings``; a test calls the same
functions without argparse. Why each number is what it is: benchmarks/README.md,
"Why the defaults are what they are".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from charnn.config import MAX_BATCH_SIZE, MAX_SEQ_LEN, RunSettings, TokenizerConfig
from charnn.errors import CharnnError

DEFAULT_TIME_BUDGET_S = 300.0  # `charnn train` with no --time / --steps / --epochs

# CPU: what learns fastest in minutes on a few cores; weight decay 0.1 beat 0.01 at every size measured
LM_CPU = {"layers": 1, "hidden": 256, "dropout": 0.0, "batch_size": 32, "seq_len": 64, "lr": 8e-3,
          "weight_decay": 0.1, "ema": 0.999, "eval_tokens": 32768}
# GPU: wider and more parallel (the GPU idles at CPU sizes); dropout 0.6 because it reads a small text often
LM_GPU = {"layers": 3, "hidden": 1024, "dropout": 0.6, "batch_size": 128, "seq_len": 128, "lr": 2e-3,
          "weight_decay": 0.1, "ema": 0.999, "eval_tokens": 32768}
# a time budget is a ceiling: a language model also stops once it has read its text this many times
MAX_EPOCHS = 60.0

# chat (seq2seq): seq_len is the longest training reply in tokens (the context gets twice that), 160
# characters or 64 subwords (about 220 characters); eval_tokens counts reply characters for chat;
# context_turns and encoder_layers go into the model config (charnn/training/chat_task.py)
CHAT_DEFAULTS = {"layers": 1, "hidden": 256, "dropout": 0.0, "batch_size": 32, "seq_len": 160,
                 "seq_len_subword": 64, "lr": 8e-3, "weight_decay": 0.01, "eval_tokens": 32768, "context_turns": 3,
                 "encoder_layers": 1, "ema": 0.999, "encoder": "flat", "context_dropout": 0.25}
# flat beat hred, and context dropout (with the <start> marker) beat none, at the same steps: benchmarks/README.md
# chat replies learn several times faster from subwords than from characters in the same time
CHAT_TOKENIZER = "bpe"
SUBWORD_VOCAB_SIZE = 1000
# how `charnn chat` decodes a reply (charnn.decoding.replies.Decoding), measured in benchmarks/README.md
# ("Chat decoding"): eight samples with their guards, the one the model scores best said (sample-and-rank);
# beam 5 with its own guards also meets the reply targets, but its replies read far less fluently (the
# model's own loss on them: 3.6 vs 2.2 nats/token)
CHAT_DECODING = {"beam": 0, "mmi_tokens": 5, "temperature": 0.8, "samples": 8}
# the anti-LM weight and shortest reply (in words) each kind of decoding gets unless the user sets them: a
# beam seeks the likeliest reply, so it needs the stronger anti-LM and a longer minimum (at weight 1 a
# quarter of its replies to openers were one reply, "no I am studying it")
CHAT_BEAM_GUARDS = {"mmi": 1.25, "min_words": 5}
CHAT_SAMPLING_GUARDS = {"mmi": 0.5, "min_words": 5}


# the widths an automatic CPU run chooses from, and how much it must read to be worth its width
AUTO_WIDTHS = (128, 192, 256, 320, 384, 448, 512)
# at the probe's rate, which reads about 10 % below a long run's: about 1,800 real steps of 32 x 64
AUTO_MIN_TOKENS = 3_300_000
TRAIN_SHARE = 0.9  # of a time budget; evaluations, samples and checkpoints take the rest
DROPOUT_FROM_EPOCHS = 6.0  # a run expected to read its text this many times gets dropout


def tokens_in_budget(rate: float, time_s: float) -> float:
    """Training tokens a run at ``rate`` tokens/s reads in a ``time_s`` budget."""
    return rate * time_s * TRAIN_SHARE


def cpu_hidden(time_s: float | None, corpus_bytes: int | None = None,
               rate_of: Callable[[int], float] | None = None) -> int:
    """LSTM width for a CPU run: the widest this machine can train on enough text in the budget
    (about 2,000 steps of 32 x 64), never wider than the text can feed (about one weight per
    character), 512 at most. ``rate_of(width)`` gives this machine's training tokens/s
    (``charnn.training.probe``); without it, 256 x sqrt(budget / 90 s). Measurements:
    benchmarks/README.md.
    """
    if not time_s:
        return LM_CPU["hidden"]
    cap = AUTO_WIDTHS[-1]
    if corpus_bytes:
        cap = min(cap, max(64, 64 * int(math.sqrt(corpus_bytes / 4) // 64)))
    guess = min(cap, max(128, 128 * round(2 * math.sqrt(time_s / 90))))
    widths = [w for w in AUTO_WIDTHS if w <= cap]
    if rate_of is None or not widths:
        return guess

    def reads_enough(width: int) -> bool:
        return tokens_in_budget(rate_of(width), time_s) >= AUTO_MIN_TOKENS

    # from the rule's guess, up while the next width still reads enough, else down until one does:
    # rates fall with width, so this measures a few widths, not all of them
    i = max(j for j, w in enumerate(widths) if w <= guess)
    if reads_enough(widths[i]):
        while i + 1 < len(widths) and reads_enough(widths[i + 1]):
            i += 1
    else:
        while i > 0:
            i -= 1
            if reads_enough(widths[i]):
                break
    return widths[i]


def cpu_dropout(epochs: float) -> float:
    """Dropout for a run expected to read its text ``epochs`` times: none until it would overfit
    (benchmarks/README.md)."""
    return 0.1 if epochs >= DROPOUT_FROM_EPOCHS else 0.0


def auto_embedding(hidden: int, vocab_size: int) -> int:
    """Embedding size when --embedding is left at 0 (and weights are not tied): the vocabulary
    rounded up to 16, at most ``hidden``. An embedding wider than the vocabulary adds arithmetic
    and no expressiveness (it is a lookup of rank at most min(vocabulary, embedding)).
    """
    return min(hidden, -(-vocab_size // 16) * 16)


def has_gpu(device: str) -> bool:
    if device == "cpu":
        return False
    import torch

    if device.startswith("cuda") or device == "mps":
        return True
    return torch.cuda.is_available() or bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def apply_presets(s: RunSettings, device: str = "auto", time_s: float | None = None,
                  corpus_bytes: int | None = None, rate_of: Callable[[int], float] | None = None) -> None:
    """Fill in the defaults for the mode and hardware; on a CPU the width follows the time budget
    (and, given ``rate_of``, this machine's measured speed: see ``cpu_hidden``)."""
    if s.mode == "chat":
        _apply(s, CHAT_DEFAULTS)
        if s.tokenizer.kind != "char":
            s.train.seq_len = CHAT_DEFAULTS["seq_len_subword"]
        return
    gpu = has_gpu(device)
    _apply(s, LM_GPU if gpu else LM_CPU)
    if time_s:
        s.train.epochs = MAX_EPOCHS  # whichever comes first; --epochs replaces it
    if not gpu:
        s.model.hidden = cpu_hidden(time_s, corpus_bytes, rate_of)
        if rate_of is not None and time_s and corpus_bytes and s.tokenizer.kind == "char":
            epochs = tokens_in_budget(rate_of(s.model.hidden), time_s) / (corpus_bytes * (1 - s.train.val_fraction))
            s.model.dropout = cpu_dropout(epochs)


def _apply(s: RunSettings, d: Mapping[str, Any]) -> None:
    s.model.layers, s.model.hidden, s.model.dropout = d["layers"], d["hidden"], d["dropout"]
    s.train.batch_size, s.train.seq_len, s.train.lr = d["batch_size"], d["seq_len"], d["lr"]
    s.train.weight_decay, s.train.ema, s.train.eval_tokens = d["weight_decay"], d["ema"], d["eval_tokens"]


def tokenizer_for(mode: str, kind: str | None = None, vocab_size: int | None = None) -> TokenizerConfig:
    """The tokenizer a run asks for, or its default: characters for a language model, subwords for chat."""
    kind = kind or (CHAT_TOKENIZER if mode == "chat" else "char")
    return TokenizerConfig(kind=kind, vocab_size=vocab_size or (SUBWORD_VOCAB_SIZE if kind != "char" else 0))


def requested_time(time_s: float | None, steps: int | None = None, epochs: float | None = None) -> float | None:
    """The time budget a run asks for: ``time_s``, else the default one unless it gives steps or epochs."""
    if time_s is not None:
        return time_s
    return None if steps or epochs else DEFAULT_TIME_BUDGET_S


def wants_width_probe(mode: str, hidden: int | None, time_s: float | None, gpu: bool, world: int = 1,
                      batch_size: int | None = None, seq_len: int | None = None) -> bool:
    """Whether a run's width is chosen by measuring this machine (``cpu_hidden``): a CPU language
    model with a time budget and no --hidden, in one process (under torchrun every rank must
    choose the same width), at a batch shape the run will accept."""
    if mode != "lm" or hidden is not None or not time_s or gpu or world > 1:
        return False
    batch, window = batch_size or LM_CPU["batch_size"], seq_len or LM_CPU["seq_len"]
    return 1 <= batch <= MAX_BATCH_SIZE and 1 <= window <= MAX_SEQ_LEN  # else refused: nothing to measure


def time_after_probe(time_s: float, probe_s: float) -> float:
    """Measuring the machine is part of the run: it comes out of the time given."""
    return max(round(time_s - probe_s, 1), 1.0)


# flag name -> (section of RunSettings, field): what a given flag replaces after the presets
FLAG_FIELDS = {
    "layers": ("model", "layers"), "hidden": ("model", "hidden"), "dropout": ("model", "dropout"),
    "batch_size": ("train", "batch_size"), "seq_len": ("train", "seq_len"), "lr": ("train", "lr"),
    "warmup": ("train", "warmup_steps"), "weight_decay": ("train", "weight_decay"), "ema": ("train", "ema"),
    "steps": ("train", "steps"), "time": ("train", "time_s"), "epochs": ("train", "epochs"),
    "eval_every": ("train", "eval_every"), "sample_every": ("train", "sample_every"),
    "sample_length": ("train", "sample_length"), "patience": ("train", "patience"),
    "val_fraction": ("train", "val_fraction"), "seed": ("train", "seed"), "device": ("train", "device"),
    "threads": ("train", "threads"),
}


class Probe(Protocol):
    """This machine's training tokens/s by width (``charnn.training.probe.RateFunction``)."""

    seconds: float

    def __call__(self, width: int) -> float: ...


@dataclass
class FineTuneBase:
    """What a run started from a trained model (--init-from) takes from it, as plain values."""

    name: str
    path: str  # its checkpoint file
    kind: str  # lm | chat
    model_config: dict = field(default_factory=dict)  # ModelConfig or Seq2SeqConfig, as saved
    tokenizer: str = "char"  # char | bpe | unigram
    vocab_size: int = 0

    def describe(self) -> str:
        """Its shape and tokens, e.g. "1×512 lstm, char tokens"."""
        cfg = self.model_config
        tokens = "char tokens" if self.tokenizer == "char" else f"{self.tokenizer} {self.vocab_size} tokens"
        return f"{cfg.get('layers')}×{cfg.get('hidden')} {cfg.get('cell', 'lstm')}, {tokens}"


# fine-tuning: half a new run's peak rate adapts the model without washing out what it knows, and its
# weights already work, so a warm-up of a few steps (benchmarks/README.md, "Fine-tuning")
FINETUNE_LR_SCALE = 0.5
FINETUNE_WARMUP_STEPS = 3
# the flags that set a model's shape or tokens: a fine-tuned run takes them from the model it starts from
ARCHITECTURE_FLAGS = ("cell", "layers", "hidden", "embedding", "tie_weights", "tokenizer", "vocab_size", "encoder")


def check_mode_fits_base(mode: str, base: FineTuneBase) -> None:
    """A language model starts from a language model, a chat model from a chat model."""
    if base.kind == mode:
        return
    if mode == "chat":
        raise CharnnError(f"{base.name} is a language model, but --mode chat trains a chat model; start from a "
                          f"chat model (`charnn models` lists them) or leave out --mode chat.")
    raise CharnnError(f"{base.name} is a chat model; add --mode chat to fine-tune it on dialogues, or start a "
                      f"language model from a language model (`charnn models` lists them).")


def check_flags_fit_base(flags: Mapping[str, Any], base: FineTuneBase) -> None:
    """Refuse, in one sentence, a flag that asks for another kind, shape or tokenizer than the model's own."""
    check_mode_fits_base(flags.get("mode") or "lm", base)
    cfg = base.model_config
    own = {"cell": cfg.get("cell", "lstm"), "layers": cfg.get("layers"), "hidden": cfg.get("hidden"),
           "embedding": cfg.get("embedding") or cfg.get("hidden"), "tie_weights": bool(cfg.get("tie_weights")),
           "tokenizer": base.tokenizer, "vocab_size": base.vocab_size if base.tokenizer != "char" else None,
           "encoder": cfg.get("encoder", "flat")}
    for flag in ARCHITECTURE_FLAGS:
        given = flags.get(flag)
        if given in (None, 0, False, "") or given == own[flag]:
            continue
        name = "--" + flag.replace("_", "-")
        shown = name if given is True else f"{name} {given}"
        raise CharnnError(f"{shown} contradicts {base.name} ({base.describe()}): a model started with "
                          f"--init-from keeps its architecture and tokenizer, so leave {name} out.")


def apply_finetune(s: RunSettings, base: FineTuneBase) -> None:
    """A fine-tuned run's settings over the presets: the model's own shape, tokenizer and dropout, then a
    gentler peak learning rate and a short warm-up; the held-out split stays a new run's (--val-fraction)."""
    cfg = base.model_config
    s.init_from = base.path
    s.tokenizer = TokenizerConfig(kind=base.tokenizer, vocab_size=base.vocab_size if base.tokenizer != "char" else 0)
    s.model.cell, s.model.tie_weights = cfg.get("cell", "lstm"), bool(cfg.get("tie_weights"))
    s.model.layers, s.model.hidden = int(cfg.get("layers") or 1), int(cfg.get("hidden") or 1)
    s.model.embedding, s.model.dropout = int(cfg.get("embedding") or 0), float(cfg.get("dropout") or 0.0)
    if s.mode == "chat" and cfg.get("max_reply_tokens"):
        s.train.seq_len = int(cfg["max_reply_tokens"])  # the reply length it learned on
    s.train.lr *= FINETUNE_LR_SCALE
    s.train.warmup_steps = FINETUNE_WARMUP_STEPS


def describe_finetune(s: RunSettings, base: FineTuneBase) -> str:
    """The line a fine-tuned run starts with: what it starts from and the defaults that differ."""
    return (f"Fine-tuning {base.name} ({base.describe()}): peak learning rate {s.train.lr:g}, warm-up "
            f"{s.train.warmup_steps} steps (by default {FINETUNE_LR_SCALE:g} x a new model's rate and a short "
            f"warm-up; --lr and --warmup change them), dropout {s.model.dropout:g}; the last {s.train.val_fraction:.0%} of "
            f"the text is held out, as for a new model.")


def build_settings(flags: Mapping[str, Any], corpus: str, corpus_bytes: int | None = None,
                   probe: Callable[[], Probe] | None = None, base: FineTuneBase | None = None) -> RunSettings:
    """A new run's settings from its flags (None: not given): the presets for the mode and
    hardware, then the given flags over them. ``probe()`` builds the width probe when the
    policy wants one (``wants_width_probe``); its measuring time comes out of the budget.
    ``base``: the model the run starts from (--init-from), whose shape and tokenizer it keeps."""
    s = RunSettings(corpus=corpus, mode=flags.get("mode") or "lm")
    s.encoding, s.errors = flags.get("encoding") or "utf-8", flags.get("errors") or "strict"
    if base is not None:
        check_flags_fit_base(flags, base)
    s.tokenizer = tokenizer_for(s.mode, flags.get("tokenizer"), flags.get("vocab_size"))
    s.model.cell = flags.get("cell") or "lstm"
    s.model.embedding = flags.get("embedding") or 0
    s.model.tie_weights = bool(flags.get("tie_weights"))
    budget_s = requested_time(flags.get("time"), flags.get("steps"), flags.get("epochs"))
    device = flags.get("device") or "auto"
    rate_of = None
    if base is None and probe is not None and wants_width_probe(
            s.mode, flags.get("hidden"), budget_s, has_gpu(device), int(flags.get("world", 1)),
            flags.get("batch_size"), flags.get("seq_len")):
        rate_of = probe()
    apply_presets(s, device, budget_s, corpus_bytes if s.mode == "lm" else None, rate_of)
    if base is not None:
        apply_finetune(s, base)
    s.train.time_s = budget_s or 0.0  # the default budget too: MAX_EPOCHS alone would not end the run
    for flag, (section, name) in FLAG_FIELDS.items():
        if flags.get(flag) is not None:
            setattr(getattr(s, section), name, flags[flag])
    s.train.bf16 = not flags.get("no_bf16")
    if rate_of is not None and rate_of.seconds and s.train.time_s:
        s.train.time_s = time_after_probe(s.train.time_s, rate_of.seconds)
    if flags.get("teacher_forcing") is not None:
        if s.mode != "chat":
            raise CharnnError("--teacher-forcing applies to chat models only; add --mode chat.")
        s.train.teacher_forcing = flags["teacher_forcing"]
    _chat_flags(s, flags)
    return s


# chat flag -> ChatSettings field (None or False: not given)
CHAT_FLAGS = {"encoder": "encoder", "context_dropout": "context_dropout", "label_smoothing": "label_smoothing",
              "generic_weight": "generic_weight"}


def _chat_flags(s: RunSettings, flags: Mapping[str, Any]) -> None:
    """The chat model's encoder and training levers: the presets, then the flags given."""
    if s.mode == "chat":
        s.chat.encoder, s.chat.context_dropout = CHAT_DEFAULTS["encoder"], CHAT_DEFAULTS["context_dropout"]
    given = [f for f in CHAT_FLAGS if flags.get(f) is not None] + (["no_start_marker"] if flags.get("no_start_marker")
                                                                   else [])
    if given and s.mode != "chat":
        raise CharnnError(f"--{given[0].replace('_', '-')} applies to chat models only; add --mode chat.")
    for flag, name in CHAT_FLAGS.items():
        if flags.get(flag) is not None:
            setattr(s.chat, name, flags[flag])
    if flags.get("no_start_marker"):
        s.chat.start_marker = False


def finish_settings(s: RunSettings) -> None:
    """The last step of building a run's settings, new or resumed: the default budget, then one check."""
    if not (s.train.steps or s.train.time_s or s.train.epochs):
        s.train.time_s = DEFAULT_TIME_BUDGET_S
    validate_settings(s)


def validate_settings(s: RunSettings) -> None:
    """Each setting checked once, here; a bad one is one sentence naming its flag."""
    m, t = s.model, s.train
    checks = [
        (s.mode in ("lm", "chat"), f"Unknown --mode {s.mode!r}; use lm or chat."),
        (1 <= m.layers <= 64, "--layers must be between 1 and 64."),
        (1 <= m.hidden <= 16384, "--hidden must be between 1 and 16384."),
        (0 <= m.embedding <= 16384, "--embedding must be between 0 and 16384."),
        (0.0 <= m.dropout < 1.0, "--dropout must be in [0, 1)."),
        (1 <= t.batch_size <= MAX_BATCH_SIZE, f"--batch-size must be between 1 and {MAX_BATCH_SIZE}."),
        (1 <= t.seq_len <= MAX_SEQ_LEN, f"--seq-len must be between 1 and {MAX_SEQ_LEN}."),
        (0.0 < t.lr <= 10.0 and math.isfinite(t.lr), "--lr must be a positive number no larger than 10."),
        (t.steps >= 0, "--steps must be 0 or more."),
        (t.warmup_steps >= 0, "--warmup must be 0 or more."),
        (t.time_s >= 0 and math.isfinite(t.time_s), "--time must be 0 or more."),
        (t.epochs >= 0, "--epochs must be 0 or more."),
        (0.0 < t.val_fraction < 1.0, "--val-fraction must be between 0 and 1."),
        (t.grad_clip >= 0, "--grad-clip must be 0 (off) or more."),
        (0.0 <= t.weight_decay <= 10.0 and math.isfinite(t.weight_decay), "--weight-decay must be between 0 and 10."),
        (0.0 <= t.ema < 1.0, "--ema must be at least 0 (off) and below 1."),
        (t.eval_every >= 0 and t.sample_every >= 0, "--eval-every and --sample-every must be 0 or more."),
        (0 <= t.sample_length <= 100_000, "--sample-length must be between 0 and 100000."),
        (t.patience >= 0, "--patience must be 0 or more."),
        (t.threads >= 0, "--threads must be 0 (auto) or more."),
        (s.tokenizer.kind in ("char", "bpe", "unigram"), "--tokenizer must be char, bpe or unigram."),
        (s.chat.encoder in ("flat", "hred"), "--encoder must be flat or hred."),
        (0.0 <= s.chat.context_dropout < 1.0, "--context-dropout must be in [0, 1)."),
        (0.0 <= s.chat.label_smoothing < 1.0, "--label-smoothing must be in [0, 1)."),
        (0.0 <= s.chat.generic_weight <= 1.0, "--generic-weight must be between 0 (drop) and 1 (off)."),
        (s.tokenizer.kind == "char" or 2 <= s.tokenizer.vocab_size <= 1_000_000,
         "--vocab-size must be between 2 and 1,000,000 for a subword tokenizer."),
    ]
    for ok, message in checks:
        if not ok:
            raise CharnnError(message)
