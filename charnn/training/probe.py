"""How fast does this machine train a model of a given width? A sub-second measurement.

``charnn train --time T`` on a CPU picks the LSTM width for the budget from what this machine
does, not from a table made on another one: CPUs differ several-fold (bf16 in hardware, vector
width, cache sizes), and the width that learns most in 90 s follows the speed (see
``presets.cpu_hidden``). Each width is timed over a few full training steps (forward, backward,
clipping, AdamW) on random tokens at the run's batch shape, threads and precision.
"""

from __future__ import annotations

import time

PROBE_STEPS = 4  # timed steps per width
WARMUP_STEPS = 2  # untimed steps before them: the first builds the kernels, the second still runs slow


def training_rate(width: int, *, layers: int = 1, vocab: int = 96, embedding: int | None = None,
                  batch: int = 32, seq_len: int = 64, bf16: bool = True, cell: str = "lstm") -> float:
    """Training tokens/s of a ``layers`` x ``width`` model on this CPU, as the trainer runs it."""
    import torch

    from charnn.config import ModelConfig
    from charnn.models.lm import RNNLanguageModel, detach_state
    from charnn.presets import auto_embedding
    from charnn.runtime.device import bf16_autocast
    from charnn.training import memory
    from charnn.training.optim import adamw

    gen_state = torch.get_rng_state()  # the probe must not shift the run's random numbers
    try:
        torch.manual_seed(0)
        emb = embedding or auto_embedding(width, vocab)
        cpu = torch.device("cpu")
        memory.check_model_fits(cell, layers, width, emb, vocab, False, cpu)  # as the trainer would
        model = RNNLanguageModel(ModelConfig(vocab_size=vocab, cell=cell, layers=layers, hidden=width,
                                             embedding=emb))
        memory.check_batch_fits(model, cell, layers, width, emb, vocab, batch, seq_len, cpu)
        opt = adamw(model, 1e-4, 0.1, cpu)  # the trainer's own optimizer (fused on a CPU)
        x = torch.randint(0, vocab, (batch, seq_len))
        autocast = bf16_autocast(cpu, bf16)
        state = None
        elapsed = 0.0
        for i in range(WARMUP_STEPS + PROBE_STEPS):
            t0 = time.perf_counter()
            with autocast:
                _, loss, state = model(x, x, state)
            state = detach_state(state)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if i >= WARMUP_STEPS:
                elapsed += time.perf_counter() - t0
        return PROBE_STEPS * batch * seq_len / max(elapsed, 1e-9)
    finally:
        torch.set_rng_state(gen_state)


class RateFunction:
    """``training_rate`` with the run's shape filled in, memoised per width; ``seconds``: the
    time spent measuring, which a run takes out of its time budget."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.cache: dict[int, float] = {}
        self.seconds = 0.0

    def __call__(self, width: int) -> float:
        if width not in self.cache:
            t0 = time.perf_counter()
            self.cache[width] = training_rate(width, **self.kwargs)
            self.seconds += time.perf_counter() - t0
        return self.cache[width]

