"""A moving average of the weights, kept beside training, that becomes the model a run leaves.

Late in training the weights still hop around the minimum the optimizer is circling (mini-batch
noise); their recent average sits nearer its centre, and scores better (benchmarks/README.md).
"""

from __future__ import annotations

import copy

import torch


class WeightAverage:
    """Exponential moving average of a model's parameters, updated after every optimizer step.

    The decay warms up as (1 + n) / (10 + n) after n updates, so the average forgets its start and
    spans about the last tenth of a short run, and is ``decay`` at most (a window of about
    1 / (1 - decay) steps in a long one).
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.params = list(model.parameters())
        self.decay = decay
        self.n = 0
        self.weights = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self) -> None:
        self.n += 1
        keep = min(self.decay, (1 + self.n) / (10 + self.n))
        for avg, p in zip(self.weights, self.params, strict=True):
            avg.lerp_(p.detach(), 1.0 - keep)

    @torch.no_grad()
    def copy_to_model(self) -> None:
        for avg, p in zip(self.weights, self.params, strict=True):
            p.copy_(avg)

    def swap_into(self, model: torch.nn.Module) -> dict:
        """Make the average the model; the last weights are returned, kept to resume from."""
        last = copy.deepcopy(model.state_dict())
        self.copy_to_model()
        return last

    def state_dict(self) -> dict:
        return {"decay": self.decay, "n": self.n, "weights": [w.clone() for w in self.weights]}

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        self.n = int(state["n"])
        for avg, w in zip(self.weights, state["weights"], strict=True):
            avg.copy_(w)
