"""Defaults that follow the budget, the machine and the data: the CPU width and the embedding size."""

import pytest
import torch

from charnn.cli import build_parser
from charnn.presets import (
    AUTO_MIN_TOKENS,
    DEFAULT_TIME_BUDGET_S,
    LM_CPU,
    TRAIN_SHARE,
    auto_embedding,
    cpu_hidden,
)


def machine(tokens_per_s_at_256: float):
    """A fake machine whose training speed falls with the square of the width; records the probes."""
    asked = []

    def rate(width: int) -> float:
        asked.append(width)
        return tokens_per_s_at_256 * (256 / width) ** 2

    return rate, asked


def test_cpu_width_grows_with_the_time_budget_within_its_bounds():
    assert cpu_hidden(90) == 256 and cpu_hidden(300) == 512
    assert cpu_hidden(20) == 128 and cpu_hidden(3600) == 512  # never below 128 or above 512
    widths = [cpu_hidden(t) for t in (10, 60, 90, 150, 200, 300, 600, 7200)]
    assert widths == sorted(widths)
    assert cpu_hidden(None) == cpu_hidden(0) == LM_CPU["hidden"]  # step / epoch budgets


def test_a_small_text_caps_the_width():
    shakespeare_bytes = 1_115_394
    assert cpu_hidden(300, shakespeare_bytes) == 512
    assert cpu_hidden(300, 100_000) == 128
    assert cpu_hidden(300, 2_000) == 64  # the floor


def test_a_measured_machine_gets_the_widest_width_that_reads_enough_text_in_the_budget():
    rate, asked = machine(70_000)
    hidden = cpu_hidden(90, 1_115_394, rate)
    assert rate(hidden) * 90 * TRAIN_SHARE >= AUTO_MIN_TOKENS  # reads enough...
    assert rate(hidden + 64) * 90 * TRAIN_SHARE < AUTO_MIN_TOKENS  # ...and one step wider would not
    assert hidden == 320
    assert max(asked) <= hidden + 64  # probing stops at the first width that is too slow...
    assert 128 not in asked and 192 not in asked  # ...and starts from the rule's guess, not the bottom


def test_a_faster_machine_or_a_longer_budget_gets_a_wider_model():
    widths = [cpu_hidden(t, None, machine(70_000)[0]) for t in (10, 60, 90, 300, 3600)]
    assert widths == sorted(widths) and widths[0] == 128 and widths[-1] == 512
    slow, fast = cpu_hidden(90, None, machine(40_000)[0]), cpu_hidden(90, None, machine(110_000)[0])
    assert slow < fast


def test_a_small_text_caps_a_measured_width_without_probing_past_the_cap():
    rate, asked = machine(10_000_000)  # fast enough for any width
    assert cpu_hidden(300, 100_000, rate) == 128
    assert max(asked) == 128
    rate, asked = machine(10_000_000)
    assert cpu_hidden(300, 2_000, rate) == 64 and asked == []  # below every automatic width


def test_dropout_only_for_a_run_that_would_read_its_text_many_times(shakespeare):
    from charnn.config import RunSettings
    from charnn.presets import DROPOUT_FROM_EPOCHS, apply_presets, cpu_dropout

    assert cpu_dropout(DROPOUT_FROM_EPOCHS - 0.5) == 0.0 and cpu_dropout(DROPOUT_FROM_EPOCHS) == 0.1
    size = shakespeare.stat().st_size

    def dropout(budget_s, tokens_per_s, tokenizer="char"):
        s = RunSettings(corpus=str(shakespeare))
        s.tokenizer.kind = tokenizer
        apply_presets(s, "cpu", budget_s, size, lambda width: tokens_per_s)
        epochs = tokens_per_s * budget_s * TRAIN_SHARE / (size * 0.9)
        return s.model.dropout, epochs

    assert dropout(90, 50_000) == (0.0, pytest.approx(4.0, abs=0.05))  # 90 s: about 4 epochs
    assert dropout(300, 30_000) == (0.1, pytest.approx(8.1, abs=0.05))  # 5 minutes of 1x512: about 9
    assert dropout(300, 30_000, "bpe")[0] == 0.0  # subword epochs are not measured: no dropout
    s = RunSettings(corpus=str(shakespeare))
    apply_presets(s, "cpu", 300, size)  # nothing measured: nothing assumed
    assert s.model.dropout == 0.0


def test_language_models_get_weight_decay_chat_keeps_its_own_and_the_flag_wins(shakespeare):
    from charnn.commands.train import settings_from_args
    from charnn.config import TrainConfig

    def settings(*argv):
        return settings_from_args(build_parser().parse_args(["train", str(shakespeare), "--device", "cpu", *argv]))

    assert settings("--steps", "10").train.weight_decay == LM_CPU["weight_decay"] == 0.1
    assert settings("--steps", "10", "--mode", "chat").train.weight_decay == TrainConfig().weight_decay == 0.01
    assert settings("--steps", "10", "--weight-decay", "0").train.weight_decay == 0.0
    # both kinds finish with the weight average (measured for each); --ema 0 turns it off
    assert settings("--steps", "10").train.ema == settings("--steps", "10", "--mode", "chat").train.ema == 0.999
    assert settings("--steps", "10", "--mode", "chat", "--ema", "0").train.ema == 0.0


def test_auto_embedding_follows_the_vocabulary():
    assert auto_embedding(256, 65) == 80 and auto_embedding(512, 200) == 208 and auto_embedding(128, 65) == 80
    assert auto_embedding(512, 8000) == 512


def test_train_settings_pick_the_width_from_time_machine_and_corpus_and_keep_a_given_one(
        small_text, shakespeare, monkeypatch):
    from charnn.commands.train import settings_from_args
    from charnn.training import probe

    rate, asked = machine(70_000)
    monkeypatch.setattr(probe, "training_rate", lambda width, **kw: rate(width))

    def settings(*argv):
        return settings_from_args(build_parser().parse_args(["train", *argv, "--device", "cpu"]))

    assert settings(str(shakespeare)).model.hidden == cpu_hidden(DEFAULT_TIME_BUDGET_S, None, rate) == 512
    assert settings(str(shakespeare), "--time", "90").model.hidden == cpu_hidden(90, None, rate) == 320
    assert settings(str(small_text), "--time", "5m").model.hidden < 256  # a few KB of text
    asked.clear()
    assert settings(str(shakespeare), "--steps", "100").model.hidden == LM_CPU["hidden"]
    assert settings(str(shakespeare), "--time", "5m", "--hidden", "96").model.hidden == 96
    assert asked == []  # no budget to size for, or a width given: nothing to measure
    monkeypatch.setenv("WORLD_SIZE", "2")  # torchrun: every rank must agree, so no measuring
    assert settings(str(shakespeare), "--time", "90").model.hidden == cpu_hidden(90) == 256
    assert asked == []


def test_the_time_spent_measuring_comes_out_of_the_time_budget(shakespeare, monkeypatch):
    from types import SimpleNamespace

    from charnn.commands.train import settings_from_args
    from charnn.training import probe

    rate, asked = machine(70_000)
    clock = [0.0]

    def slow(width, **kw):  # each width takes 0.4 s to measure, on a fake clock
        clock[0] += 0.4
        return rate(width)

    monkeypatch.setattr(probe, "training_rate", slow)
    monkeypatch.setattr(probe, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    s = settings_from_args(build_parser().parse_args(["train", str(shakespeare), "--time", "90", "--device", "cpu"]))
    assert asked and s.train.time_s == round(90 - 0.4 * len(asked), 1)
    # no measuring (a width given): the budget stays as given
    s = settings_from_args(build_parser().parse_args(
        ["train", str(shakespeare), "--time", "90", "--hidden", "64", "--device", "cpu"]))
    assert s.train.time_s == 90


def test_the_probe_measures_a_real_training_step_without_moving_the_run_s_random_numbers(monkeypatch):
    from charnn.training import probe

    torch.manual_seed(3)
    before = torch.get_rng_state()
    assert probe.training_rate(32, vocab=20, batch=4, seq_len=8, bf16=False) > 0
    assert torch.equal(torch.get_rng_state(), before)
    calls = []
    real = probe.training_rate
    monkeypatch.setattr(probe, "training_rate", lambda width, **kw: calls.append(width) or real(width, **kw))
    memo = probe.RateFunction(vocab=20, batch=4, seq_len=8, bf16=False)
    assert memo(32) == memo(32) > 0 and memo(48) > 0
    assert calls == [32, 48]  # each width measured once


def test_a_time_budget_ends_after_the_epoch_cap_unless_epochs_are_given(shakespeare):
    from charnn.commands.train import settings_from_args
    from charnn.presets import LM_GPU, MAX_EPOCHS

    def train(*argv, device="cuda"):
        argv = ["train", str(shakespeare), "--device", device, *argv]
        return settings_from_args(build_parser().parse_args(argv))

    # a GPU reads a small text dozens of times a minute: the time budget gets an epoch cap
    s = train("--time", "180")
    assert (s.train.time_s, s.train.epochs, s.model.dropout) == (180, MAX_EPOCHS, LM_GPU["dropout"])
    assert train().train.epochs == MAX_EPOCHS  # the default budget is a time budget too
    assert train("--time", "180", "--epochs", "200").train.epochs == 200  # the user's cap wins
    assert train("--steps", "500").train.epochs == 0  # a step budget is exact
    assert train("--time", "20", device="cpu").train.epochs == MAX_EPOCHS
    assert train("--time", "20", "--mode", "chat").train.epochs == 0  # language models only


# -- the policy as plain functions, without argparse ---------------------------------------------


def test_chat_defaults_to_subwords_and_a_language_model_to_characters():
    from charnn.presets import SUBWORD_VOCAB_SIZE, tokenizer_for

    assert (tokenizer_for("chat").kind, tokenizer_for("chat").vocab_size) == ("bpe", SUBWORD_VOCAB_SIZE)
    assert (tokenizer_for("lm").kind, tokenizer_for("lm").vocab_size) == ("char", 0)
    assert tokenizer_for("lm", "unigram").vocab_size == SUBWORD_VOCAB_SIZE
    assert tokenizer_for("chat", "char").vocab_size == 0 and tokenizer_for("chat", None, 500).vocab_size == 500


def test_the_default_time_budget_applies_only_without_another_budget():
    from charnn.presets import requested_time

    assert requested_time(None) == DEFAULT_TIME_BUDGET_S
    assert requested_time(None, steps=10) is None and requested_time(None, epochs=2.0) is None
    assert requested_time(90.0, steps=10) == 90.0


def test_the_width_is_measured_only_for_a_cpu_language_model_with_a_time_budget_in_one_process():
    from charnn.presets import wants_width_probe

    assert wants_width_probe("lm", None, 90, gpu=False)
    assert not wants_width_probe("chat", None, 90, gpu=False)
    assert not wants_width_probe("lm", 256, 90, gpu=False)  # a width given
    assert not wants_width_probe("lm", None, None, gpu=False)  # no time budget
    assert not wants_width_probe("lm", None, 90, gpu=True)
    assert not wants_width_probe("lm", None, 90, gpu=False, world=2)  # ranks must agree
    assert not wants_width_probe("lm", None, 90, gpu=False, batch_size=10**9)  # refused later: nothing to measure


def test_measuring_time_comes_out_of_the_budget_but_leaves_at_least_a_second():
    from charnn.presets import time_after_probe

    assert time_after_probe(90, 1.23) == 88.8
    assert time_after_probe(1.5, 3.0) == 1.0


def test_build_settings_fills_presets_then_the_given_flags_win_without_argparse(shakespeare):
    from charnn.presets import (
        CHAT_DEFAULTS,
        DEFAULT_TIME_BUDGET_S,
        LM_CPU,
        MAX_EPOCHS,
        build_settings,
    )

    rate, asked = machine(70_000)

    class Probe:
        seconds = 0.8

        def __call__(self, width):
            return rate(width)

    s = build_settings({"time": 90.0, "device": "cpu"}, str(shakespeare), 1_115_394, Probe)
    assert s.model.hidden == cpu_hidden(90, 1_115_394, rate) and asked
    assert s.train.time_s == 89.2 and s.train.lr == LM_CPU["lr"] and s.tokenizer.kind == "char"
    s = build_settings({"steps": 5, "device": "cpu", "lr": 0.01, "no_bf16": True}, str(shakespeare), None, Probe)
    assert (s.model.hidden, s.train.lr, s.train.bf16, s.train.time_s) == (LM_CPU["hidden"], 0.01, False, 0.0)
    s = build_settings({"device": "cpu"}, str(shakespeare), 1_115_394, Probe)  # no budget given: the default
    assert s.train.time_s == DEFAULT_TIME_BUDGET_S - 0.8 and s.train.epochs == MAX_EPOCHS  # whichever is first
    chat = build_settings({"mode": "chat", "steps": 5}, str(shakespeare))
    assert chat.train.seq_len == CHAT_DEFAULTS["seq_len_subword"] and chat.train.weight_decay == 0.01


def test_teacher_forcing_is_refused_for_a_language_model_where_the_settings_are_built(shakespeare):
    from charnn.errors import CharnnError
    from charnn.presets import build_settings

    with pytest.raises(CharnnError, match="chat models only"):
        build_settings({"steps": 5, "teacher_forcing": "0.5", "device": "cpu"}, str(shakespeare))


def test_settings_are_checked_once_with_the_default_budget_filled_in():
    from charnn.config import RunSettings
    from charnn.errors import CharnnError
    from charnn.presets import finish_settings

    s = RunSettings(corpus="x")
    finish_settings(s)
    assert s.train.time_s == DEFAULT_TIME_BUDGET_S
    s.model.layers = 0
    with pytest.raises(CharnnError, match="--layers"):
        finish_settings(s)
    s = RunSettings(corpus="x", mode="seq")
    with pytest.raises(CharnnError, match="--mode"):
        finish_settings(s)
