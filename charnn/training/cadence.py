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


class Cadence:
    """The step budget and when to evaluate and sample: by steps when asked or budgeted, else by the clock."""

    def __init__(self, t: TrainConfig, windows: int):
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
        self.last_eval_s = 0.0  # the clock when the last evaluation ended

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
        return bool(self.eval_steps and step % self.eval_steps == 0)

    def eval_due_by_clock(self, elapsed: float) -> bool:
        return elapsed - self.last_eval_s >= self.eval_secs

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
