"""Learning rate: linear warm-up, then cosine decay to a floor over the budget."""

from __future__ import annotations

import math


def lr_at(step: int, progress: float, tc) -> float:
    """``progress`` is the fraction of the budget used (steps, time or epochs, whichever is furthest)."""
    if tc.warmup_steps and step < tc.warmup_steps:
        return tc.lr * (step + 1) / tc.warmup_steps
    floor = tc.lr * tc.min_lr_ratio
    return floor + (tc.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, progress))))
