"""Defaults that follow the budget and the data: the CPU width and the embedding size."""

from charnn.cli import build_parser
from charnn.presets import DEFAULT_TIME_BUDGET_S, LM_CPU, auto_embedding, cpu_hidden


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


def test_auto_embedding_follows_the_vocabulary():
    assert auto_embedding(256, 65) == 80 and auto_embedding(512, 200) == 208 and auto_embedding(128, 65) == 80
    assert auto_embedding(512, 8000) == 512


def test_train_settings_pick_the_width_from_time_and_corpus_and_keep_a_given_one(small_text, shakespeare):
    from charnn.cli import settings_from_args

    def settings(*argv):
        return settings_from_args(build_parser().parse_args(["train", *argv, "--device", "cpu"]))

    assert settings(str(shakespeare)).model.hidden == cpu_hidden(DEFAULT_TIME_BUDGET_S) == 512
    assert settings(str(shakespeare), "--time", "90").model.hidden == 256
    assert settings(str(shakespeare), "--steps", "100").model.hidden == LM_CPU["hidden"]
    assert settings(str(shakespeare), "--time", "5m", "--hidden", "96").model.hidden == 96
    assert settings(str(small_text), "--time", "5m").model.hidden < 256  # a few KB of text


def test_the_run_header_says_which_shape_was_picked():
    import io

    from charnn.report import PlainReporter
    from charnn.training.events import Start

    out = io.StringIO()
    settings = {"model": {"layers": 1, "hidden": 512, "embedding": 80, "cell": "lstm"}}
    PlainReporter(out)(Start(run_dir="r", run_name="r", mode="lm", device="cpu", parameters=1_255_057,
                             train_tokens=1, val_tokens=1, vocab_size=65, tokenizer="char", budget="5 min",
                             settings=settings))
    assert "| 1x512 lstm, embedding 80 | 1.3M params |" in out.getvalue()
