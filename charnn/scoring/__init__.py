"""How well a model predicts held-out text, one way for training's evaluations and ``charnn eval``.

``streams`` scores a language model on a token stream, ``replies`` a chat model
on held-out replies; both add up to a ``Score``. ``evaluate`` is ``charnn eval``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LN2 = math.log(2.0)


@dataclass(frozen=True)
class Score:
    """Summed loss over scored tokens, and the characters those tokens hold."""

    nats: float
    tokens: int
    chars: float

    @property
    def nats_per_token(self) -> float:
        return self.nats / max(self.tokens, 1)

    @property
    def bits_per_char(self) -> float:
        return self.nats / LN2 / max(self.chars, 1e-9)
