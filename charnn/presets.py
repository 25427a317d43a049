"""Default model and training sizes, chosen by measurement (see benchmarks/)."""

from __future__ import annotations

import math

from charnn.config import RunSettings

DEFAULT_TIME_BUDGET_S = 300.0  # `charnn train` with no --time / --steps / --epochs

# CPU: what learns fastest in minutes on a few cores (benchmarks/time_to_quality.py)
LM_CPU = {"layers": 1, "hidden": 256, "dropout": 0.0, "batch_size": 32, "seq_len": 64, "lr": 8e-3}
# GPU: wider and more parallel; the GPU is idle at CPU sizes
LM_GPU = {"layers": 3, "hidden": 1024, "dropout": 0.1, "batch_size": 128, "seq_len": 128, "lr": 2e-3}


# chat (seq2seq): seq_len is the longest training reply in tokens (the context gets twice that), 160
# characters or 64 subwords (about 220 characters); eval_tokens counts reply characters for chat;
# context_turns and encoder_layers go into the model config (charnn/training/chat_task.py);
# lr 8e-3: 1.96 vs 2.04 held-out bits/char after 600 steps at 3e-3 (bpe 1000, unit-variance embeddings)
CHAT_DEFAULTS = {"layers": 1, "hidden": 256, "dropout": 0.0, "batch_size": 32, "seq_len": 160,
                 "seq_len_subword": 64, "lr": 8e-3, "eval_tokens": 32768, "context_turns": 3, "encoder_layers": 1}


def cpu_hidden(time_s: float | None, corpus_bytes: int | None = None) -> int:
    """LSTM width for a CPU run: wider when there is time to train it, never wider than the text can feed.

    Held-out bits/char on tiny-shakespeare, 2 cores, default settings otherwise (benchmarks/README.md):
    at 90 s, 1x192 2.287, 1x224 2.232, 1x256 2.231, 1x320 2.257, 1x384 2.249; at 5 minutes,
    1x256 2.183, 1x384 2.148, 1x512 2.136. Hence 256 x sqrt(budget / 90 s) in steps of 128,
    from 128 up to 512; 512 also keeps generation above 5,000 characters/s on one core (1x640:
    4,400). A text of N characters gets at most about N weights (1x512 has 1.1 M, tiny-shakespeare
    1.1 M characters), so a small file gets a small model.
    """
    if not time_s:
        return LM_CPU["hidden"]
    hidden = min(512, max(128, 128 * round(2 * math.sqrt(time_s / 90))))
    if corpus_bytes:
        hidden = min(hidden, max(64, 64 * int(math.sqrt(corpus_bytes / 4) // 64)))
    return hidden


def auto_embedding(hidden: int, vocab_size: int) -> int:
    """Embedding size when --embedding is left at 0 (and weights are not tied).

    An embedding followed by the first layer's input weights is a per-token lookup of rank at
    most min(vocabulary, embedding), so an embedding wider than the vocabulary adds arithmetic
    and no expressiveness. For characters that is a large saving: 1x256 on tiny-shakespeare,
    embedding 64 vs 256, reached the same held-out loss per token (2.266 vs 2.265 bits/char
    after 3.3 M tokens) at 1.47x the training tokens/s (benchmarks/time_to_quality.py).
    """
    return min(hidden, -(-vocab_size // 16) * 16)


def _has_gpu(device: str) -> bool:
    if device == "cpu":
        return False
    import torch

    if device.startswith("cuda") or device == "mps":
        return True
    return torch.cuda.is_available() or bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def apply_presets(s: RunSettings, device: str = "auto", time_s: float | None = None,
                  corpus_bytes: int | None = None) -> None:
    """Fill in the defaults for the mode and hardware; on a CPU the width follows the time budget."""
    if s.mode == "chat":
        c = CHAT_DEFAULTS
        s.model.layers, s.model.hidden, s.model.dropout = c["layers"], c["hidden"], c["dropout"]
        s.train.batch_size, s.train.seq_len, s.train.lr = c["batch_size"], c["seq_len"], c["lr"]
        if s.tokenizer.kind != "char":
            s.train.seq_len = c["seq_len_subword"]
        s.train.eval_tokens = c["eval_tokens"]
        return
    gpu = _has_gpu(device)
    d = LM_GPU if gpu else LM_CPU
    s.model.layers, s.model.hidden, s.model.dropout = d["layers"], d["hidden"], d["dropout"]
    s.train.batch_size, s.train.seq_len, s.train.lr = d["batch_size"], d["seq_len"], d["lr"]
    if not gpu:
        s.model.hidden = cpu_hidden(time_s, corpus_bytes)
