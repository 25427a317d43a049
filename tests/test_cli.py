import json
import subprocess
import sys

import pytest

from charnn.cli import main
from charnn.config import parse_duration
from charnn.report import score, score_cell
from tests.conftest import tiny_args


def test_help_answers_without_importing_torch_or_textual():
    code = (
        "import sys, contextlib, io\n"
        "from charnn.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        "print(' '.join(m for m in ('torch', 'textual', 'rich') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_python_dash_m_charnn_works():
    out = subprocess.run([sys.executable, "-m", "charnn", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "charnn" in out.stdout


@pytest.mark.parametrize("text,seconds", [("90", 90), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("1.5m", 90)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("budget", ["0", "0s", "0m", "-5", "-5m"])
def test_a_zero_or_negative_time_budget_is_refused_in_one_sentence(budget, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["train", "tinyshakespeare", f"--time={budget}"])
    assert exited.value.code != 0
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.endswith(f"the time budget must be more than zero, not {budget!r} (try 90, 5m or 1h)")


def test_version_prints_the_package_version(capsys):
    from charnn import __version__

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.strip() == f"charnn {__version__}"


@pytest.fixture
def trained_run(small_text, capsys):
    code = main(["train", str(small_text), *tiny_args("--steps", "12", "--eval-every", "6", "--name", "cli")])
    assert code == 0
    return capsys.readouterr()


def test_train_reports_progress_samples_and_checkpoints(trained_run, charnn_home):
    err = trained_run.err
    assert "run cli" in err and "val" in err and "sample at step 6" in err
    assert "done (budget) at step 12" in err
    # the closing line gives the figure `charnn models` lists: best.pt's (the model generate uses)
    info = json.loads((charnn_home / "runs" / "cli" / "run.json").read_text())
    assert "done (budget) at step 12 after" in err and f"| {score(info['held_out_bpc'], info['best_val_bpc'])} |" in err
    assert "1x32 lstm" in err and "weight decay 0.1 |" in err  # the header names what regularises it
    run = charnn_home / "runs" / "cli"
    assert (run / "best.pt").exists() and (run / "last.pt").exists()
    assert trained_run.out == ""  # messages go to stderr


def test_generate_streams_text_to_stdout_reproducibly(trained_run, capsys):
    assert main(["generate", "--length", "40", "--seed", "7", "--prime", "the "]) == 0
    first = capsys.readouterr()
    assert main(["generate", "--length", "40", "--seed", "7", "--prime", "the "]) == 0
    second = capsys.readouterr()
    assert first.out == second.out and first.out.startswith("the ")
    assert len(first.out.rstrip("\n")) == 44
    assert main(["generate", "-n", "2", "--length", "10", "--seed", "1"]) == 0
    assert capsys.readouterr().out.count("--- sample") == 2


def test_eval_prints_bits_per_char(trained_run, small_text, capsys):
    assert main(["eval", "cli", str(small_text), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["characters"] == len(small_text.read_text()) - 1
    assert 0 < result["bits_per_char"] < 8


def test_eval_reads_a_built_in_corpus_by_name_in_the_form_the_model_reads(trained_run, small_text, capsys,
                                                                          monkeypatch):
    from charnn.corpora import catalog

    asked = []
    monkeypatch.setattr(catalog, "builtin_path", lambda name, mode="lm", notify=None: asked.append(mode) or small_text)
    assert main(["eval", "cli", str(small_text), "--json"]) == 0
    by_path = json.loads(capsys.readouterr().out)
    assert main(["eval", "cli", "tinyshakespeare", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bits_per_char"] == by_path["bits_per_char"]
    assert asked == ["lm"]  # a language model reads the plain text (a chat model: the dialogue file)
    assert main(["eval", "cli", "no-such-corpus"]) == 2
    assert "no-such-corpus" in capsys.readouterr().err


def test_models_lists_the_run(trained_run, charnn_home, capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "cli" in out and "1x32" in out
    # a finished run shows its closing score over the whole held-out text, unmarked
    info_path = charnn_home / "runs" / "cli" / "run.json"
    info = json.loads(info_path.read_text())
    info["held_out_bpc"] = 2.345  # as when best.pt is the closing model
    info_path.write_text(json.dumps(info))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("cli "))
    assert " 2.345  " in line and "*" not in line
    # a run with only periodic checks (stopped early, or written before the closing score was
    # kept) shows its best one, marked as such
    info["held_out_bpc"] = None
    info_path.write_text(json.dumps(info))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("cli "))
    assert f" {info['best_val_bpc']:.3f}*  " in line and "* the best periodic check" in out


def test_export_writes_a_summary_that_lists_a_built_in_model(trained_run, charnn_home, tmp_path,
                                                             monkeypatch, capsys):
    from charnn import paths

    shipped = tmp_path / "shipped"
    assert main(["export", "cli", str(shipped / "mine-lm.pt")]) == 0
    assert "mine-lm.json" in capsys.readouterr().err
    run = json.loads((charnn_home / "runs" / "cli" / "run.json").read_text())
    summary = json.loads((shipped / "mine-lm.json").read_text())
    for key in ("mode", "tokenizer", "layers", "hidden", "parameters", "step", "held_out_bpc", "best_val_bpc"):
        assert summary[key] == run[key], key
    # `charnn models` lists built-in models from their summaries, with the runs' columns
    monkeypatch.setattr(paths, "bundled_checkpoints_dir", lambda: shipped)
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("mine-lm "))
    assert out.index("built-in models") < out.index(line)
    assert "1x32" in line and f" {score_cell(run['held_out_bpc'], run['best_val_bpc'])}  " in line


def test_jsonl_prints_one_event_per_line(small_text, capsys):
    assert main(["train", str(small_text), *tiny_args("--steps", "4", "--eval-every", "2", "--jsonl")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    kinds = [json.loads(line)["event"] for line in lines]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert {"step", "eval", "sample", "checkpoint"} <= set(kinds)


def test_subword_run_reports_bits_per_character(small_text, capsys):
    args = ["train", str(small_text), "--tokenizer", "bpe", "--vocab-size", "300",
            *tiny_args("--steps", "4", "--eval-every", "4", "--jsonl")]
    assert main(args) == 0
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    start = events[0]
    assert start["tokenizer"] == "bpe" and start["vocab_size"] == 300
    final = [e for e in events if e["event"] == "eval"][-1]
    # bits per character = nats per token / ln 2 / characters per token, and subwords hold >1 character
    assert final["val_bpc"] < final["val_loss"] / 0.6931


def test_user_errors_are_one_sentence_without_traceback(tmp_path, capsys):
    assert main(["train", str(tmp_path / "missing.txt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("charnn: ") and "does not exist" in err and "Traceback" not in err
    assert main(["generate", "--checkpoint", str(tmp_path / "nope.pt")]) == 2
    assert "nope.pt" in capsys.readouterr().err


def test_train_says_when_measuring_the_machine_took_time_from_the_budget(small_text, monkeypatch, capsys):
    from types import SimpleNamespace

    from charnn.training import probe

    clock = [0.0]

    def slow(width, **kw):  # 0.5 s per width measured, on a fake clock
        clock[0] += 0.5
        return 1e9  # fast enough for any width

    monkeypatch.setattr(probe, "training_rate", slow)
    monkeypatch.setattr(probe, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    args = ["train", str(small_text), "--time", "30", "--steps", "3", "--layers", "1", "--batch-size", "8",
            "--seq-len", "32", "--threads", "1", "--sample-length", "0", "--device", "cpu"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert f"{clock[0]:.1f} s of the 30 s went to measuring this machine's training speed" in err
    assert f"budget 3 steps or {30 - clock[0]:g} s" in err
