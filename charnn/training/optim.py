"""The optimizer of every training step, built in one place: the trainer's, and the width probe's,
which must time the step the trainer will run."""

from __future__ import annotations

import torch


def adamw(model: torch.nn.Module, lr: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on the weight matrices only (not biases or norms' scales)."""
    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.dim() >= 2 else no_decay).append(p)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
        betas=(0.9, 0.99),
        fused=device.type in ("cuda", "cpu"),  # CPU: one pass instead of ~12 (1x512: 1.8 vs 6-11 ms a step)
    )
