"""Default model and training sizes, chosen by measurement (see benchmarks/)."""

from __future__ import annotations

import math
from collections.abc import Callable

from charnn.config import RunSettings

DEFAULT_TIME_BUDGET_S = 300.0  # `charnn train` with no --time / --steps / --epochs

# CPU: what learns fastest in minutes on a few cores (benchmarks/time_to_quality.py).
# Weight decay 0.1 (AdamW, weight matrices only) vs 0.01, held-out bits/char on tiny-shakespeare, same
# tokens: 1x384 at 90-second tokens 2.128 vs 2.166; 1x512 + dropout 0.1 at 5-minute tokens 2.048 vs
# 2.104 / 2.117 (0.3: 2.059; 0.1 without dropout: 2.075)
LM_CPU = {"layers": 1, "hidden": 256, "dropout": 0.0, "batch_size": 32, "seq_len": 64, "lr": 8e-3,
          "weight_decay": 0.1}
# GPU: wider and more parallel; the GPU is idle at CPU sizes. But a GPU reads a small text many
# times in minutes, and past a few dozen readings a 3x1024 model learns the text rather than the
# language. Held-out bits/char on tiny-shakespeare, one H200 (benchmarks/README.md): 3 minutes
# (130-150 epochs) at dropout 0.3 3.744 and 0.5 2.386, each best 20-35 epochs in and worse at
# every evaluation after; dropout 0.5 over 60 s (49 epochs) 2.040, 0.6 over 75 s (61 epochs) 2.031.
# So dropout 0.6, and MAX_EPOCHS below.
LM_GPU = {"layers": 3, "hidden": 1024, "dropout": 0.6, "batch_size": 128, "seq_len": 128, "lr": 2e-3,
          "weight_decay": 0.1}
# A time budget is a ceiling: a language-model run also ends once it has read its text this many
# times (the learning-rate schedule then ends there too). On a GPU, above. On a CPU it binds only
# for small texts: the first 120 kB of tiny-shakespeare (1x128, dropout 0.1), `--time 2m`, 1 thread:
# 2.161 held-out bits/char after 49 s with the cap, 2.200 after 2 minutes (146 epochs) without.
MAX_EPOCHS = 60.0


# chat (seq2seq): seq_len is the longest training reply in tokens (the context gets twice that), 160
# characters or 64 subwords (about 220 characters); eval_tokens counts reply characters for chat;
# context_turns and encoder_layers go into the model config (charnn/training/chat_task.py);
# lr 8e-3: 1.96 vs 2.04 held-out bits/char after 600 steps at 3e-3 (bpe 1000, unit-variance embeddings);
# the weight average (ema), chitchat, 1,500 steps, the same run scored both ways, seeds 0 / 7: reply
# bits/char 1.803 / 1.807 averaged vs 1.809 / 1.818 for the last weights (benchmarks/README.md)
CHAT_DEFAULTS = {"layers": 1, "hidden": 256, "dropout": 0.0, "batch_size": 32, "seq_len": 160,
                 "seq_len_subword": 64, "lr": 8e-3, "eval_tokens": 32768, "context_turns": 3, "encoder_layers": 1,
                 "ema": 0.999}


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
    """LSTM width for a CPU run: the widest this machine can train on enough text in the budget,
    never wider than the text can feed.

    Held-out bits/char on tiny-shakespeare after a time budget, 1 layer (benchmarks/README.md):
    the best width is the widest that still reads about 4 M tokens (2,000 steps of 32 x 64).
    AVX2 EPYC, fp32, 90 s: 256 (2,017 steps) 2.231, 320 2.257, 384 2.249; 5 min: 384 2.148,
    512 (2,183 steps) 2.136. AVX-512 EPYC, bf16, 90 s: 256 (3,639 steps) 2.200, 320 2.174,
    384 (1,981 steps) 2.152, 512 (1,217 steps) 2.182. ``rate_of(width)`` gives this machine's
    training tokens/s (``charnn.training.probe``), so the choice follows the hardware; without it,
    the AVX2 machine's rule, 256 x sqrt(budget / 90 s). 512 at most: 1x640 at the compute of a
    5-minute 1x512 run learned less (2.119 vs 2.104; with weight decay 0.1, 2.049 vs 2.048), and
    512 keeps generation above 5,000 characters/s on one core (the built-in 1x512 model: 8.3k on
    one thread). A text of N characters gets at most about N weights (1x512 has 1.1 M,
    tiny-shakespeare 1.1 M characters), so a small file gets a small model.
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
    """Dropout for a run expected to read its text ``epochs`` times: none until it would overfit.

    Held-out bits/char on tiny-shakespeare, same tokens each (benchmarks/README.md): 1x384 after
    4 epochs, 2.166 without dropout vs 2.205 with 0.1; 1x512 after 9 epochs, 2.127 without,
    2.104 with 0.1, 2.121 with 0.2 (and 2.146 with DropConnect 0.25 on the recurrent weights).
    """
    return 0.1 if epochs >= DROPOUT_FROM_EPOCHS else 0.0


def auto_embedding(hidden: int, vocab_size: int) -> int:
    """Embedding size when --embedding is left at 0 (and weights are not tied).

    An embedding followed by the first layer's input weights is a per-token lookup of rank at
    most min(vocabulary, embedding), so an embedding wider than the vocabulary adds arithmetic
    and no expressiveness. For characters that is a large saving: 1x256 on tiny-shakespeare,
    embedding 64 vs 256, reached the same held-out loss per token (2.266 vs 2.265 bits/char
    after 3.3 M tokens) at 1.47x the training tokens/s (benchmarks/time_to_quality.py).
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
        c = CHAT_DEFAULTS
        s.model.layers, s.model.hidden, s.model.dropout = c["layers"], c["hidden"], c["dropout"]
        s.train.batch_size, s.train.seq_len, s.train.lr = c["batch_size"], c["seq_len"], c["lr"]
        if s.tokenizer.kind != "char":
            s.train.seq_len = c["seq_len_subword"]
        s.train.eval_tokens = c["eval_tokens"]
        s.train.ema = c["ema"]
        return
    gpu = has_gpu(device)
    d = LM_GPU if gpu else LM_CPU
    s.model.layers, s.model.hidden, s.model.dropout = d["layers"], d["hidden"], d["dropout"]
    s.train.batch_size, s.train.seq_len, s.train.lr = d["batch_size"], d["seq_len"], d["lr"]
    s.train.weight_decay = d["weight_decay"]
    if time_s:
        s.train.epochs = MAX_EPOCHS  # whichever comes first; --epochs replaces it
    if not gpu:
        s.model.hidden = cpu_hidden(time_s, corpus_bytes, rate_of)
        if rate_of is not None and time_s and corpus_bytes and s.tokenizer.kind == "char":
            epochs = tokens_in_budget(rate_of(s.model.hidden), time_s) / (corpus_bytes * (1 - s.train.val_fraction))
            s.model.dropout = cpu_dropout(epochs)
