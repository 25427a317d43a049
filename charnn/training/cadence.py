"""When a run evaluates, samples and ends, and how fast it goes: budgets, cadence, throughput, ETA."""

from __future__ import annotations

import math
import time

from charnn.config import TrainConfig

REPORT_EVERY_S = 0.25  # Step events at most this often


def describe_budget(t: TrainConfig) -> str:
    parts = []
    if t.steps:
        parts.append(f"{t.steps} steps")
    if t.time_s:
        parts.append(f"{t.time_s:g} s")
    if t.epochs:
        parts.append(f"{t.epochs:g} epochs")
    return " or ".join(parts) + " (whichever comes first)" if len(parts) > 1 else parts[0]


class Clock:
    """Training time, carried over a resume."""

    def __init__(self, elapsed: float = 0.0):
        self.start = time.perf_counter() - elapsed

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


EARLY_FIRST_S = 5.0  # a fresh run's first evaluation and sample, this long after its first step
EARLY_STEP_SHARE = 8  # a step cadence's first evaluation comes at this fraction (1/8) of its interval
MIN_EVAL_SHARE = 1 / 8  # the least share of the periodic slice (eval_tokens) an early evaluation reads


def next_due(last: float, first: float, regular: float) -> float:
    """When the evaluation after one due at ``last`` (0: none yet) falls due: at ``first``, then twice as
    late each time (the gaps double) while the gap is shorter than ``regular``, then every ``regular``.
    first=5, regular=37: 5, 10, 20, 40, 77, 114 ...; first=0: regular, 2 regular ..."""
    if last <= 0:
        return min(first, regular) if first > 0 else regular
    return last + min(last, regular)


class Cadence:
    """The step budget and when to evaluate and sample: by steps when asked or budgeted, else by the clock.
    A cadence it picks itself starts early and slows down (``next_due``), so the first minute shows
    samples; an early evaluation reads a ``share`` of the held-out slice in proportion to the gap before
    it, so the early ones together cost about what one regular one does. An ``--eval-every`` the user
    gives is kept as given."""

    def __init__(self, t: TrainConfig, windows: int, fresh: bool = True):
        self.time_s = t.time_s
        if t.eval_every:
            self.eval_steps, self.eval_secs = t.eval_every, 0.0
        elif t.steps:
            self.eval_steps, self.eval_secs = max(1, t.steps // 10), 0.0
        elif t.time_s:
            self.eval_steps, self.eval_secs = 0, min(max(t.time_s / 8, 10.0), 120.0)
        else:
            self.eval_steps, self.eval_secs = max(1, int(windows * t.epochs / 10) or windows // 4), 0.0
        self.sample_steps = t.sample_every
        self.max_steps = t.steps or (int(math.ceil(t.epochs * windows)) if t.epochs else 0)
        # by steps, the early points are a function of the step (a resumed run evaluates where an
        # uninterrupted one would); by the clock, only a run with no evaluation yet starts early
        if t.eval_every:
            self.first = 0.0
        elif self.eval_steps:
            self.first = self.eval_steps / EARLY_STEP_SHARE if self.eval_steps >= EARLY_STEP_SHARE else 0.0
        else:
            self.first = EARLY_FIRST_S if fresh else 0.0
        self.regular = self.eval_steps or self.eval_secs
        self.last_due, self.due = 0.0, next_due(0.0, self.first, self.regular)  # points: steps or seconds
        self.last_eval_s = 0.0  # the clock when the last evaluation ended (or the first step did)

    def steps_done(self, step: int) -> bool:
        return bool(self.max_steps and step >= self.max_steps)

    def time_up(self, elapsed: float) -> bool:
        return bool(self.time_s and elapsed >= self.time_s)

    def fraction_done(self, step: int, elapsed: float) -> float:
        """How far through its budget the run is (0..1): the schedule and progress bars follow it."""
        fr = []
        if self.max_steps:
            fr.append(step / self.max_steps)
        if self.time_s:
            fr.append(elapsed / self.time_s)
        return min(1.0, max(fr) if fr else 0.0)

    def eval_due_by_steps(self, step: int) -> bool:
        while math.ceil(self.due) < step:
            self.last_due, self.due = self.due, next_due(self.due, self.first, self.regular)
        return math.ceil(self.due) == step

    def eval_due_by_clock(self, elapsed: float) -> bool:
        """Due when the gap since the last evaluation ended (the first step, before the first) has passed."""
        return elapsed - self.last_eval_s >= self.due - self.last_due

    @property
    def share(self) -> float:
        """The share of the held-out slice the evaluation due now reads: 1 once the gaps are regular."""
        return min(1.0, max((self.due - self.last_due) / self.regular, MIN_EVAL_SHARE))

    def evaluated(self, elapsed: float) -> None:
        """An evaluation has ended at ``elapsed``: by the clock, the next gap starts now."""
        self.last_eval_s = elapsed
        if self.eval_secs:
            self.last_due, self.due = self.due, next_due(self.due, self.first, self.regular)

    def sample_due(self, step: int) -> bool:
        return bool(self.sample_steps and step % self.sample_steps == 0)


class Throughput:
    """Mean loss and tokens/s over the steps since the last report, evaluation pauses left out, and the ETA."""

    def __init__(self, start_step: int, start_tokens: int, now: float):
        self.start_step, self.start_tokens = start_step, start_tokens
        self.last_report = -1.0
        self.paused = 0.0  # seconds spent evaluating and saving since the last report
        self._reset(now)

    def _reset(self, now: float) -> None:
        self.loss, self.steps, self.tokens, self.t0, self.paused = 0.0, 0, 0, now, 0.0

    def add(self, loss: float, tokens: int) -> None:
        self.loss += loss
        self.steps += 1
        self.tokens += tokens

    def due(self, step: int, now: float) -> bool:
        return now - self.last_report >= REPORT_EVERY_S or step == self.start_step + 1

    def report(self, step: int, tokens_seen: int, now: float, cadence: Cadence) -> tuple[float, float, float | None]:
        """Mean loss, tokens/s and seconds left, then start a new window."""
        span = max(now - self.t0 - self.paused, 1e-9)
        rate = self.tokens / span if step > self.start_step + 1 else 0.0
        mean_loss = self.loss / self.steps
        eta = None
        if rate > 0:
            etas = []
            if cadence.max_steps:
                per_step = (tokens_seen - self.start_tokens) / max(step - self.start_step, 1)  # chat: varies
                etas.append((cadence.max_steps - step) * per_step / rate)
            if cadence.time_s:
                etas.append(max(0.0, cadence.time_s - now))
            eta = min(etas) if etas else None
        self.last_report = now
        self._reset(now)
        return mean_loss, rate, eta
