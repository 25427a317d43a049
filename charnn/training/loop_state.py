"""What the training loop carries from step to step, and the state it rolls back to."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch

from charnn.runtime.checkpoint import CheckpointData
from charnn.training.averaging import WeightAverage


@dataclass
class Progress:
    """The run's position and record: saved in every checkpoint, restored on resume."""

    step: int = 0
    tokens_seen: int = 0
    elapsed_s: float = 0.0  # training time of the runs before this one (a resume's start)
    best: float = math.inf  # the best periodic evaluation, bits/char; best.pt holds that model
    bad_evals: int = 0  # evaluations since the last improvement
    lr_scale: float = 1.0  # halved by every NaN rollback
    history: dict[str, list] = field(default_factory=lambda: {"train_loss": [], "eval": []})
    # the closing evaluation's score over the whole held-out text, when one runs (periodic ones read a
    # slice, so ``best`` is not comparable with it); not carried over a resume
    held_out: float | None = None
    # the same, only while best.pt holds that closing model, so that no record names another model's score
    best_held_out: float | None = None

    @classmethod
    def from_checkpoint(cls, ck: CheckpointData) -> Progress:
        return cls(step=ck.step, tokens_seen=ck.tokens_seen, elapsed_s=ck.elapsed_s, best=ck.best_val_bpc,
                   bad_evals=ck.bad_evals, lr_scale=ck.lr_scale,
                   history={k: list(v) for k, v in ck.history.items()})

    def record_eval(self, val_loss: float, val_bpc: float, compared: float, closing: bool,
                    ranked: bool = True) -> bool:
        """Log an evaluation; True when ``compared`` (the periodic measure) beats the best so far. An early,
        shorter one (not ``ranked``) is only logged: it neither sets the best nor counts for patience."""
        if not ranked:
            self.history["eval"].append([self.step, val_loss, val_bpc])
            return False
        improved = compared < self.best - 1e-6
        if improved:
            self.best, self.bad_evals = compared, 0
            self.best_held_out = self.held_out if closing else None
        else:
            self.bad_evals += 1
        self.history["eval"].append([self.step, val_loss, val_bpc])
        return improved

    def recent_train_loss(self) -> float | None:
        recent = self.history["train_loss"][-50:]
        return sum(recent) / len(recent) if recent else None

    def last_val_bpc(self) -> float | None:
        return self.history["eval"][-1][2] if self.history["eval"] else None

    def best_or_none(self) -> float | None:
        return self.best if math.isfinite(self.best) else None


class Snapshot:
    """The last good state, to roll back to when the loss turns NaN or infinite."""

    def __init__(self, model: torch.nn.Module, optimizer, task, average: WeightAverage | None):
        self.model, self.optimizer, self.task, self.average = model, optimizer, task, average
        self.failures = 0  # rollbacks since the last good state was taken
        self.take()

    def take(self) -> None:
        self.state = (copy.deepcopy(self.model.state_dict()), copy.deepcopy(self.optimizer.state_dict()),
                      self.task.state_dict(), self.average.state_dict() if self.average else None)
        self.failures = 0

    def restore(self) -> None:
        self.failures += 1
        model, optimizer, task, average = self.state
        self.model.load_state_dict(model)
        self.optimizer.load_state_dict(optimizer)
        self.task.load_state_dict(task)
        if self.average:
            self.average.load_state_dict(average)
