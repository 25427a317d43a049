"""Fine-tuning (issue 20): `charnn train CORPUS --init-from MODEL` starts from a trained model.

The model keeps its architecture and tokenizer; a character model grows its vocabulary for new
characters (new rows at the mean of the old ones) and says which; a subword model says how much
of the text it spells byte by byte; the run records what it started from; every bad input is one
sentence.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
from pathlib import Path

import pytest
import torch

from charnn.cli import build_parser, main
from charnn.commands.train import settings_from_args
from charnn.config import ModelConfig
from charnn.models.lm import RNNLanguageModel
from charnn.presets import (
    FINETUNE_LR_SCALE,
    FINETUNE_WARMUP_STEPS,
    LM_CPU,
    FineTuneBase,
    build_settings,
)
from charnn.runtime.checkpoint import read_checkpoint
from charnn.runtime.runs import find_model
from charnn.training.init_from import StartingModel
from tests.conftest import tiny_args
from tests.test_bad_input import assert_nothing_half_written, assert_one_clear_sentence, run_cli

BASE_NAME = "words-base"
NEW_TEXT = "".join(f"def f{i}(x):\n    return {{x: [{i}, 2]}}  # the cat sat\n" for i in range(200))
DIALOGUE = "".join(f"A: how is the weather in town {i}?\nB: sunny and warm ☀, and you?\nA: rainy here.\n\n"
                   for i in range(40))
QUICK = ["--steps", "2", "--batch-size", "4", "--seq-len", "16", "--threads", "1", "--device", "cpu",
         "--sample-length", "0"]


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """A tiny character model trained on words (lowercase letters, spaces, full stops), made once."""
    root = tmp_path_factory.mktemp("finetune-base")
    corpus = root / "words.txt"
    corpus.write_text("\n".join(f"the {a} {b} sat on the {c}." for a in ("red", "old", "small")
                                for b in ("cat", "dog") for c in ("mat", "hill", "sea")) * 4 + "\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHARNN_HOME", str(root / "home"))
        mp.setattr("sys.stderr", io.StringIO())
        assert main(["train", str(corpus), *tiny_args("--steps", "10", "--device", "cpu"),
                     "--out", str(root / BASE_NAME), "--quiet"]) == 0
    return root / BASE_NAME


@pytest.fixture
def new_text(tmp_path) -> Path:
    p = tmp_path / "code.txt"
    p.write_text(NEW_TEXT)
    return p


@pytest.fixture
def dialogue(tmp_path) -> Path:
    p = tmp_path / "chats.txt"
    p.write_text(DIALOGUE)
    return p


def settings_for(argv: list[str]):
    return settings_from_args(build_parser().parse_args([str(a) for a in argv]))


# -- the model it starts from ----------------------------------------------------------------


def test_new_characters_join_the_vocabulary_after_the_old_ones_with_rows_at_their_mean(base_run, new_text):
    start = StartingModel.load(settings_for(["train", new_text, "--init-from", base_run]))
    base = read_checkpoint(base_run / "best.pt")
    old_chars = base.tokenizer["chars"]
    assert start.tokenizer.chars == old_chars + start.added
    assert set(start.added) == set(NEW_TEXT) - set(old_chars) and "{" in start.added and "#" in start.added
    model = RNNLanguageModel(ModelConfig.from_dict({**start.model_config, "vocab_size": start.tokenizer.vocab_size}))
    start.load_into(model)
    weights, n = model.state_dict(), len(old_chars)
    for key in ("embed.weight", "head.weight", "head.bias"):
        old = base.model[key].float()
        assert torch.equal(weights[key][:n], old), key
        assert torch.allclose(weights[key][n:], old.mean(0).expand(len(start.added), *old.shape[1:])), key
    assert torch.equal(weights["rnn.weight_hh_l0"], base.model["rnn.weight_hh_l0"].float())
    said = " ".join(start.notices)
    assert f"{len(start.added)} character(s) {BASE_NAME} never saw" in said and "'{'" in said


def test_a_text_with_no_new_characters_keeps_the_vocabulary_and_the_weights(base_run, tmp_path):
    same = tmp_path / "same.txt"
    same.write_text("the old dog sat on the hill.\n" * 50)
    start = StartingModel.load(settings_for(["train", same, "--init-from", base_run]))
    assert start.added == "" and start.tokenizer.chars == read_checkpoint(base_run / "best.pt").tokenizer["chars"]
    assert not any("never saw" in n for n in start.notices)


def test_fine_tuning_takes_the_shape_from_the_model_and_never_measures_the_machine(base_run):
    base = FineTuneBase(name="m", path=str(base_run / "best.pt"), kind="lm", tokenizer="char",
                        model_config={"cell": "gru", "layers": 2, "hidden": 48, "embedding": 16, "dropout": 0.2})

    def probe():
        raise AssertionError("a fine-tuned run's width is the model's own")

    s = build_settings({"mode": "lm", "time": 60.0, "device": "cpu"}, "x.txt", 10_000, probe, base)
    assert (s.model.cell, s.model.layers, s.model.hidden, s.model.embedding, s.model.dropout) == ("gru", 2, 48, 16, 0.2)
    assert s.train.lr == pytest.approx(LM_CPU["lr"] * FINETUNE_LR_SCALE)
    assert s.train.warmup_steps == FINETUNE_WARMUP_STEPS and s.train.time_s == 60.0
    assert s.init_from == base.path
    assert build_settings({"mode": "lm", "lr": 1e-4, "device": "cpu"}, "x.txt", base=base).train.lr == 1e-4


# -- whole runs ------------------------------------------------------------------------------


def test_a_fine_tuned_run_keeps_the_shape_records_its_start_and_is_listed_with_it(base_run, new_text, capsys):
    assert main(["train", str(new_text), "--init-from", str(base_run), *QUICK, "--name", "ft"]) == 0
    err = capsys.readouterr().err
    assert f"Fine-tuning {BASE_NAME} (1×32 lstm, char tokens)" in err and "never saw" in err
    run = find_model("ft").path.parent
    ck = read_checkpoint(run / "last.pt")
    assert ck.init_from["name"] == BASE_NAME and ck.init_from["path"] == str(base_run / "best.pt")
    assert ck.model_config["hidden"] == 32 and ck.model_config["layers"] == 1
    assert ck.tokenizer["chars"].startswith(read_checkpoint(base_run / "best.pt").tokenizer["chars"])
    assert ck.settings["train"]["lr"] == pytest.approx(LM_CPU["lr"] * FINETUNE_LR_SCALE)
    assert json.loads((run / "run.json").read_text())["init_from"] == BASE_NAME
    assert main(["models"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert "from" in listing[0].split() and BASE_NAME in next(line for line in listing if line.startswith("ft "))
    # resuming goes on from the run's own weights and keeps the record
    assert main(["train", "--resume", "ft", "--steps", "3", "--quiet"]) == 0
    resumed = read_checkpoint(run / "last.pt")
    assert resumed.step == 3 and resumed.init_from["name"] == BASE_NAME


def test_a_chat_model_fine_tunes_from_the_built_in_one_keeping_its_tokenizer(dialogue, capsys):
    builtin = find_model("chitchat-chat").path
    assert main(["train", "--mode", "chat", str(dialogue), "--init-from", "chitchat-chat", *QUICK,
                 "--seq-len", "32", "--name", "chat-ft"]) == 0
    err = capsys.readouterr().err
    assert "keeps its bpe tokenizer (1000 pieces)" in err and "'☀'" in err and "byte by byte" in err
    ck = read_checkpoint(find_model("chat-ft").path.parent / "last.pt")
    base = read_checkpoint(builtin)
    assert ck.kind == "chat" and ck.init_from["name"] == "chitchat-chat"
    assert ck.tokenizer["model"] == base.tokenizer["model"] and ck.model_config["hidden"] == base.model_config["hidden"]
    assert ck.model_config["max_reply_tokens"] == 32  # --seq-len still sets the reply length


# -- bad input: one sentence each -------------------------------------------------------------


def _truncated(tmp_path: Path) -> Path:
    src = find_model("tinyshakespeare-lm").path
    out = tmp_path / "cut.pt"
    out.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    return out


BAD = {
    "lm-model-for-chat": (["--mode", "chat", "{dialogue}", "--init-from", "tinyshakespeare-lm"],
                          ["tinyshakespeare-lm is a language model", "--mode chat"]),
    "chat-model-for-lm": (["{text}", "--init-from", "chitchat-chat"], ["chitchat-chat is a chat model"]),
    "no-such-name": (["{text}", "--init-from", "no-such-model"], ["No checkpoint, run or model named"]),
    "truncated": (["{text}", "--init-from", "{truncated}"], ["truncated or corrupted"]),
    "hidden": (["{text}", "--init-from", "tinyshakespeare-lm", "--hidden", "256"],
               ["--hidden 256 contradicts tinyshakespeare-lm (1×512 lstm, char tokens)", "leave --hidden out"]),
    "layers": (["{text}", "--init-from", "tinyshakespeare-lm", "--layers", "3"], ["--layers 3 contradicts"]),
    "cell": (["{text}", "--init-from", "tinyshakespeare-lm", "--cell", "gru"], ["--cell gru contradicts"]),
    "tokenizer": (["{text}", "--init-from", "tinyshakespeare-lm", "--tokenizer", "bpe"],
                  ["--tokenizer bpe contradicts"]),
    "vocab-size": (["{text}", "--init-from", "tinyshakespeare-lm", "--vocab-size", "500"],
                   ["--vocab-size 500 contradicts"]),
    "embedding": (["{text}", "--init-from", "tinyshakespeare-lm", "--embedding", "64"], ["--embedding 64 contradicts"]),
    "chat-hidden": (["--mode", "chat", "{dialogue}", "--init-from", "chitchat-chat", "--hidden", "128"],
                    ["--hidden 128 contradicts chitchat-chat (1×256 lstm, bpe 1000 tokens)"]),
    "chat-vocab-size": (["--mode", "chat", "{dialogue}", "--init-from", "chitchat-chat", "--vocab-size", "2000"],
                        ["--vocab-size 2000 contradicts"]),
    "chat-encoder": (["--mode", "chat", "{dialogue}", "--init-from", "chitchat-chat", "--encoder", "hred"],
                     ["--encoder hred contradicts chitchat-chat"]),
    "with-resume": (["--resume", "some-run", "--init-from", "tinyshakespeare-lm"], ["give only one of them"]),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_init_from_is_one_clear_sentence_and_leaves_nothing_behind(case, new_text, dialogue, tmp_path, capsys,
                                                                       charnn_home):
    argv, expected = BAD[case]
    places = {"{text}": str(new_text), "{dialogue}": str(dialogue)}
    if "{truncated}" in argv:
        places["{truncated}"] = str(_truncated(tmp_path))
    code, out, err = run_cli(["train", *(places.get(a, a) for a in argv), *QUICK], capsys)
    assert_one_clear_sentence(code, out, err, *expected)
    assert_nothing_half_written(charnn_home)


def test_matching_architecture_flags_are_not_a_contradiction(base_run, new_text):
    s = settings_for(["train", new_text, "--init-from", base_run, "--hidden", "32", "--layers", "1", "--cell", "lstm",
                      "--tokenizer", "char"])
    assert (s.model.hidden, s.model.layers) == (32, 1)


# -- the TUI -------------------------------------------------------------------------------------


def test_the_train_form_starts_from_a_model_keeping_its_tokens_and_size():
    from charnn.tui.screens.train import build_train_args

    args = build_train_args("tinyshakespeare", "bpe", "large", "2m", "", "", "tinyshakespeare-lm", "lm")
    assert args[:3] == ["tinyshakespeare", "--init-from", "tinyshakespeare-lm"]
    assert "--tokenizer" not in args and "--hidden" not in args and "--mode" not in args
    chat = build_train_args("chitchat", "char", "auto", "5m", "", "", "chitchat-chat", "chat")
    assert chat[:5] == ["chitchat", "--init-from", "chitchat-chat", "--mode", "chat"]
    assert build_train_args("tinyshakespeare", "char", "auto", "5m", "", "")[1:3] == ["--tokenizer", "char"]


def test_the_train_form_offers_the_built_in_models_and_runs_and_models_show_where_they_started(charnn_home):
    from charnn.tui.app import CharnnApp

    run = charnn_home / "runs" / "poems-ft"
    run.mkdir(parents=True)
    (run / "last.pt").write_bytes(b"")
    (run / "run.json").write_text(json.dumps({"name": "poems-ft", "mode": "lm", "tokenizer": "char", "layers": 1,
                                              "hidden": 512, "step": 100, "init_from": "tinyshakespeare-lm",
                                              "updated": 1_760_000_000}))

    async def drive():
        app = CharnnApp()
        async with app.run_test(size=(130, 40)) as pilot:
            form = app.train_screen.query_one("#start-from")
            values = [value for _, value in form._options]
            assert values[0] == "" and {"tinyshakespeare-lm", "chitchat-chat", str(run)} <= set(values)
            form.value = "chitchat-chat"
            await pilot.pause()
            assert app.train_screen.query_one("#size").disabled
            assert app.train_screen.query_one("TrainForm").values()["start_mode"] == "chat"
            await pilot.press("f4")
            table = app.screen.query_one("#models-table")
            columns = [str(c.label) for c in table.columns.values()]
            row = dict(zip(columns, table.get_row_at(0), strict=True))
            assert row["run"] == "poems-ft" and row["from"] == "tinyshakespeare-lm"

    asyncio.run(drive())
    shutil.rmtree(run)
