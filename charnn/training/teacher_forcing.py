"""Teacher forcing and scheduled sampling for the chat decoder (Bengio et al. 2015).

The ratio is the chance that the decoder is fed the gold previous reply token;
otherwise (per example, per position) it is fed a token sampled from its own
prediction. It is a pure function of the training step, so a resumed run goes
on along the same schedule. Written as one ``--teacher-forcing`` value:

    1          plain teacher forcing (the default); any ratio in [0, 1] stays constant
    linear:2000:0.5            falls in a straight line from 1 to 0.5 at step 2000
    exponential:2000:0.5       falls fast at first, then slowly (k^step, Bengio's "exponential decay")
    inverse-sigmoid:2000:0.5   stays near 1, falls around step 1000, flattens out (Bengio's "inverse sigmoid")

Every shape starts at 1 and reaches FLOOR (default 0) at STEPS, then stays there.
No torch here: the progress display computes the ratio from a run's settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from charnn.errors import CharnnError

SHAPES = ("linear", "exponential", "inverse-sigmoid")
EXP_LEFT = 0.01  # the exponential shape has 1% of its fall left at STEPS (then it is cut to the floor)
SIGMOID_SLOPE = 10.0  # the inverse sigmoid goes from 99.3% to 0.7% of its fall over STEPS
USAGE = ("--teacher-forcing takes a ratio between 0 and 1 (1 = plain teacher forcing) or SHAPE:STEPS[:FLOOR] "
         "with SHAPE linear, exponential or inverse-sigmoid, e.g. linear:2000:0.5")


@dataclass(frozen=True)
class TeacherForcing:
    shape: str = "constant"  # constant | linear | exponential | inverse-sigmoid
    steps: int = 0  # the step at which a decaying shape reaches its floor
    floor: float = 1.0  # the constant ratio, or where a decaying shape ends

    @property
    def always(self) -> bool:
        """True when every step is plain teacher forcing (the fast whole-sequence path)."""
        return self.shape == "constant" and self.floor >= 1.0

    def ratio(self, step: int) -> float:
        """The teacher-forcing ratio at training step ``step`` (0-based)."""
        if self.shape == "constant":
            return self.floor
        x = min(max(step, 0) / self.steps, 1.0)
        if self.shape == "linear":
            fall = x
        elif self.shape == "exponential":
            fall = (1.0 - EXP_LEFT**x) / (1.0 - EXP_LEFT)
        else:
            def s(v: float) -> float:
                return 1.0 / (1.0 + math.exp(-SIGMOID_SLOPE * (v - 0.5)))

            fall = (s(x) - s(0.0)) / (s(1.0) - s(0.0))
        return 1.0 - (1.0 - self.floor) * fall

    def __str__(self) -> str:
        if self.shape == "constant":
            return f"{self.floor:g}"
        return f"{self.shape}:{self.steps}:{self.floor:g}"

    def describe(self) -> str:
        if self.shape == "constant":
            return ("plain teacher forcing" if self.always else
                    f"scheduled sampling: the decoder is fed its own sampled token at {1 - self.floor:.0%} "
                    f"of positions")
        return (f"scheduled sampling: teacher forcing falls from 1 to {self.floor:g} by step {self.steps} "
                f"({self.shape}); the rest of the time the decoder is fed its own sampled token")


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CharnnError(f"{USAGE} (not {text!r}).") from None
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise CharnnError(f"{USAGE}; {text} is outside 0..1.")
    return value


def parse_teacher_forcing(text: str | float | int) -> TeacherForcing:
    """A schedule from its ``--teacher-forcing`` text; one clear sentence when it is not one."""
    text = str(text).strip().lower()
    if ":" not in text:
        return TeacherForcing("constant", 0, _ratio(text))
    shape, _, rest = text.partition(":")
    if shape not in SHAPES:
        raise CharnnError(f"{USAGE} (unknown shape {shape!r}).")
    steps_text, _, floor_text = rest.partition(":")
    if not steps_text.isdigit() or int(steps_text) < 1:
        raise CharnnError(f"{USAGE}; STEPS must be a whole number of steps, at least 1 (not {steps_text!r}).")
    if ":" in floor_text:
        raise CharnnError(f"{USAGE} (too many parts in {text!r}).")
    floor = _ratio(floor_text) if floor_text else 0.0
    return TeacherForcing(shape, int(steps_text), floor)
