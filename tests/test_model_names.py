"""One name for a model everywhere: every name `charnn models` lists opens that model in generate,
chat, eval and `tui --run`; a run of the user's with a built-in model's name wins, and says so.
Also the run record behind `run.json`, read tolerantly."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from charnn import paths
from charnn.cli import main
from charnn.errors import CharnnError
from charnn.runtime.runs import RunRecord, find_model, list_models, list_runs, read_record

LM, CHAT = "tinyshakespeare-lm", "chitchat-chat"


@pytest.fixture
def built_ins() -> Path:
    where = paths.bundled_checkpoints_dir()
    if not ((where / f"{LM}.pt").is_file() and (where / f"{CHAT}.pt").is_file()):
        pytest.skip("the built-in models are not in checkpoints/")
    return where


@pytest.fixture
def text(tmp_path) -> Path:
    p = tmp_path / "text.txt"
    p.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 4, encoding="utf-8")
    return p


def user_run_named(name: str, built_ins: Path, charnn_home: Path) -> Path:
    """A run of the user's under a built-in model's name (its checkpoint a copy of that model)."""
    run = charnn_home / "runs" / name
    run.mkdir(parents=True)
    shutil.copy(built_ins / f"{name}.pt", run / "best.pt")
    (run / "run.json").write_text(json.dumps({"name": name, "mode": "lm", "step": 3, "updated": 1.0}))
    return run


def test_every_listed_name_resolves_to_the_file_that_model_opens(built_ins):
    names = {r.name: r for r in list_models()}
    assert {LM, CHAT} <= set(names)
    for name, record in names.items():
        assert find_model(name).path == record.checkpoint() and not find_model(name).notice


def test_models_prints_the_built_in_names(built_ins, capsys):
    assert main(["models"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert {LM, CHAT} <= listed


def test_generate_takes_a_built_in_model_by_name(built_ins, capsys):
    assert main(["generate", "--checkpoint", LM, "--length", "20", "--seed", "3", "--prime", "KING"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("KING") and len(out.out.rstrip("\n")) > len("KING")
    assert out.err == ""


def test_chat_takes_a_built_in_model_by_name(built_ins, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("hello there\n"))
    assert main(["chat", "--checkpoint", CHAT, "--seed", "1", "--max-length", "20"]) == 0
    assert capsys.readouterr().out.strip()


def test_eval_takes_a_built_in_model_by_name(built_ins, text, capsys):
    assert main(["eval", LM, str(text), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert Path(result["checkpoint"]) == built_ins / f"{LM}.pt" and 0 < result["bits_per_char"] < 8


def test_a_name_of_the_wrong_kind_says_which_command_fits(built_ins, capsys):
    assert main(["generate", "--checkpoint", CHAT, "--length", "5"]) == 2
    err = capsys.readouterr().err
    assert "is a chat model, not a language model; use it with charnn chat" in err and "Traceback" not in err


def test_an_unknown_name_is_one_sentence_pointing_at_the_list(capsys):
    assert main(["generate", "--checkpoint", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'no-such-model'" in err and "`charnn models` lists" in err


def test_the_users_run_of_the_same_name_wins_and_says_so(built_ins, charnn_home, text, capsys):
    run = user_run_named(LM, built_ins, charnn_home)
    assert main(["eval", LM, str(text), "--json"]) == 0
    out = capsys.readouterr()
    assert Path(json.loads(out.out)["checkpoint"]) == run / "best.pt"
    notices = [line for line in out.err.splitlines() if line.strip()]
    assert len(notices) == 1 and "your run" in notices[0] and str(built_ins / f"{LM}.pt") in notices[0]
    assert main(["generate", "-c", LM, "--length", "5", "--seed", "1"]) == 0
    assert capsys.readouterr().err.count("your run") == 1


def test_tui_run_opens_a_built_in_model_in_its_screen(built_ins):
    from charnn.tui import _what_to_open

    assert _what_to_open(LM) == (None, ("lm", str(built_ins / f"{LM}.pt")))
    assert _what_to_open(CHAT) == (None, ("chat", str(built_ins / f"{CHAT}.pt")))
    with pytest.raises(CharnnError, match="No run named 'no-such-model'"):
        _what_to_open("no-such-model")


def test_tui_run_follows_the_users_run_and_says_it_hides_the_built_in(built_ins, charnn_home, capsys):
    from charnn.tui import _what_to_open

    run = user_run_named(LM, built_ins, charnn_home)
    (run / "events.jsonl").write_text("")
    attach, model = _what_to_open(LM)
    assert model is None and attach.events_path == run / "events.jsonl"
    assert capsys.readouterr().err.count("your run") == 1


def test_tui_opened_on_a_built_in_name_loads_it_in_generate(built_ins):
    import asyncio

    from charnn.tui import _what_to_open
    from charnn.tui.app import CharnnApp
    from charnn.tui.screens.generate import GenerateScreen

    async def scenario():
        app = CharnnApp(open_model=_what_to_open(LM)[1])
        async with app.run_test(size=(100, 30)) as pilot:
            for _ in range(600):
                screen = app.screen
                if isinstance(screen, GenerateScreen) and screen.loaded is not None:
                    break
                await pilot.pause(0.1)
            assert isinstance(app.screen, GenerateScreen) and app.screen.explicit
            assert app.screen.loaded.path == built_ins / f"{LM}.pt"

    asyncio.run(scenario())


# -- the run record ---------------------------------------------------------------------


def test_a_run_record_reads_missing_and_mistyped_fields_as_none(charnn_home, capsys):
    run = charnn_home / "runs" / "odd"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"step": "many", "layers": 2, "held_out_bpc": 1, "future": [1]}))
    record = read_record(run)
    assert record == RunRecord(name="odd", path=run, layers=2, held_out_bpc=1.0)
    assert record.checkpoint() is None and not record.resumable
    assert main(["models"]) == 0 and "odd" in capsys.readouterr().out


def test_a_run_opens_best_pt_else_last_pt(charnn_home):
    run = charnn_home / "runs" / "r"
    run.mkdir(parents=True)
    (run / "run.json").write_text("{}")
    (run / "last.pt").write_bytes(b"x")
    assert list_runs()[0].checkpoint() == run / "last.pt" and list_runs()[0].resumable
    (run / "best.pt").write_bytes(b"x")
    assert list_runs()[0].checkpoint() == run / "best.pt" == find_model("r").path


def test_models_json_gives_each_runs_record(charnn_home, capsys):
    run = charnn_home / "runs" / "r"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"name": "r", "mode": "chat", "step": 7}))
    assert main(["models", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["name"] == "r" and listed["mode"] == "chat" and listed["step"] == 7
    assert listed["path"] == str(run) and listed["held_out_bpc"] is None
