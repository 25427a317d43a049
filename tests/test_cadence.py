"""When a run evaluates and samples: early and doubling at first, then the regular cadence; and the
samples of a run, one text from the same prime and seed."""

from __future__ import annotations

import pytest
import torch

from charnn.config import RunSettings, TrainConfig
from charnn.training.cadence import EARLY_FIRST_S, Cadence, next_due


def points(first: float, regular: float, n: int) -> list[float]:
    out, last = [], 0.0
    for _ in range(n):
        last = next_due(last, first, regular)
        out.append(last)
    return out


def test_the_early_schedule_starts_at_the_first_point_and_doubles_until_the_regular_interval():
    assert points(5, 37, 7) == [5, 10, 20, 40, 77, 114, 151]  # gaps 5, 5, 10, 20, then 37
    assert points(12.5, 100, 6) == [12.5, 25, 50, 100, 200, 300]


def test_without_an_early_start_the_schedule_is_the_regular_interval():
    assert points(0, 37, 3) == [37, 74, 111]
    assert points(60, 37, 3) == [37, 74, 111]  # a first point past the interval is no early start


def clock_evaluations(cadence: Cadence, first_step_s: float, until_s: float, eval_s: float,
                      shares: list | None = None) -> list[float]:
    """When evaluations start on a simulated clock, each taking ``eval_s``, steps 0.1 s apart."""
    cadence.last_eval_s = t = first_step_s
    starts = []
    while t < until_s:
        t = round(t + 0.1, 6)
        if cadence.eval_due_by_clock(t):
            starts.append(t)
            if shares is not None:
                shares.append(cadence.share)
            t += eval_s
            cadence.evaluated(t)
    return starts


def test_a_time_budget_evaluates_about_five_seconds_after_the_first_step_then_doubles():
    cadence = Cadence(TrainConfig(time_s=300), windows=100)
    assert cadence.eval_secs == 37.5  # the regular cadence of a 5-minute run
    shares: list[float] = []
    starts = clock_evaluations(cadence, first_step_s=1.0, until_s=300, eval_s=0.5, shares=shares)
    assert starts[0] == pytest.approx(1.0 + EARLY_FIRST_S)
    gaps = [b - a - 0.5 for a, b in zip(starts, starts[1:], strict=False)]  # from each evaluation's end
    assert gaps == pytest.approx([5, 10, 20] + [37.5] * (len(gaps) - 3), abs=0.11)
    assert len([s for s in starts if s < 31]) == 3  # three samples in the first half minute
    # an early evaluation reads the held-out slice in proportion to the gap before it
    assert shares == pytest.approx([5 / 37.5, 5 / 37.5, 10 / 37.5, 20 / 37.5] + [1.0] * (len(shares) - 4))


def test_a_resumed_time_budget_keeps_the_regular_cadence():
    cadence = Cadence(TrainConfig(time_s=300), windows=100, fresh=False)
    starts = clock_evaluations(cadence, first_step_s=0.0, until_s=100, eval_s=0.0)
    assert starts == pytest.approx([37.5, 75.0], abs=0.11)


def due_steps(cadence: Cadence, steps: range) -> list[int]:
    return [s for s in steps if cadence.eval_due_by_steps(s)]


def test_a_step_budget_starts_at_an_eighth_of_its_interval_and_doubles():
    cadence = Cadence(TrainConfig(steps=1000), windows=100)
    shares = []
    for step in range(1, 1001):
        if cadence.eval_due_by_steps(step):
            shares.append((step, cadence.share))
    assert shares == [(13, 1 / 8), (25, 1 / 8), (50, 1 / 4), (100, 1 / 2)] + [(s, 1.0) for s in range(200, 1001, 100)]


def test_a_resumed_step_budget_evaluates_where_an_uninterrupted_run_would():
    assert due_steps(Cadence(TrainConfig(steps=1000), windows=100, fresh=False), range(31, 401)) == [
        50, 100, 200, 300, 400]


def test_an_epoch_budget_starts_early_too():
    cadence = Cadence(TrainConfig(epochs=2), windows=400)  # every 80 steps, from step 10
    assert due_steps(cadence, range(1, 250)) == [10, 20, 40, 80, 160, 240]


def test_a_given_eval_every_and_a_short_interval_stay_as_they_are():
    assert due_steps(Cadence(TrainConfig(steps=1000, eval_every=100), windows=100), range(1, 401)) == [
        100, 200, 300, 400]
    assert due_steps(Cadence(TrainConfig(steps=30), windows=100), range(1, 31)) == list(range(3, 31, 3))


def test_a_run_evaluates_and_samples_on_the_early_schedule_and_ranks_only_the_regular_evaluations(
        small_text, tmp_path):
    from charnn.training.events import Checkpoint, Eval, Sample
    from charnn.training.trainer import train_stream

    s = RunSettings(corpus=str(small_text))
    s.model.layers, s.model.hidden = 1, 16
    s.train.batch_size, s.train.seq_len, s.train.steps, s.train.threads = 4, 16, 80, 1
    s.train.sample_length, s.train.device = 12, "cpu"
    events = list(train_stream(s, out=str(tmp_path / "run")))
    evals = [e.step for e in events if isinstance(e, Eval) and not e.final]
    samples = [e.step for e in events if isinstance(e, Sample)]
    assert evals == samples == [1, 2, 4, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80]
    # the early ones read less of the held-out text: previews, never best.pt
    assert not any(e.improved for e in events if isinstance(e, Eval) and e.step < 16)
    assert min(e.step for e in events if isinstance(e, Checkpoint) and e.kind == "best") == 16


# -- the samples: one text getting better ------------------------------------------------


def test_lm_samples_share_their_prime_and_seed_whatever_the_step(small_text):
    from charnn.training.lm_task import LMTask

    s = RunSettings(corpus=str(small_text))
    s.model.layers, s.model.hidden, s.train.batch_size, s.train.seq_len = 1, 16, 4, 16
    task = LMTask(s, torch.device("cpu"))
    first = task.sample(task.model, 10, 60, seed=5)
    assert task.sample(task.model, 5000, 60, seed=5) == first  # the same weights: the same text
    assert task.model.training  # sampling leaves the model as it found it
    assert any(task.sample(task.model, 10, 60, seed=seed) != first for seed in (6, 7, 8))  # the seed is used


def test_chat_samples_reply_to_one_held_out_context_with_one_seed(tmp_path):
    from charnn.training.chat_task import ChatTask
    from tests.test_seq2seq import write_synthetic

    s = RunSettings(mode="chat", corpus=str(write_synthetic(tmp_path / "d.txt", n=40)))
    s.model.layers, s.model.hidden, s.train.batch_size, s.train.seq_len = 1, 16, 8, 16
    task = ChatTask(s, torch.device("cpu"))
    first = task.sample(task.model, 10, 40, seed=5)
    assert task.sample(task.model, 5000, 40, seed=5) == first
