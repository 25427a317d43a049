"""The TUI driven by Pilot: real training children, real checkpoints, real generation.

Every wait is for an observable state with a timeout; nothing sleeps to assert.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from charnn.cli import main
from charnn.report import score
from charnn.tui.app import CharnnApp
from charnn.tui.screens.chat import ChatMessage
from charnn.tui.screens.dialogs import QuitDialog
from charnn.tui.screens.generate import GenerateScreen
from charnn.tui.training_process import TrainingProcess
from charnn.tui.widgets.loss_chart import LossChart
from charnn.tui.widgets.sample_log import SampleLog
from charnn.tui.widgets.text_stream import TextStream
from tests.conftest import tiny_args

TIMEOUT = 120.0  # generous: the child imports torch on a busy two-core machine


def run_async(test):
    """Run an async Pilot test in its own event loop (no async pytest plugin needed)."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return wrapper


async def wait_for(pilot, predicate, what: str, timeout: float = TIMEOUT) -> None:
    """Let the app run until ``predicate()`` holds, or fail saying what never happened."""
    loop_time = 0.0
    while not predicate():
        if loop_time > timeout:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await pilot.pause(0.1)
        loop_time += 0.1
    await pilot.pause()  # let the app handle what it posted on the way (notifications)


def notices(app) -> list[str]:
    return [n.message for n in app._notifications]


def fill_form(app, corpus: Path | str, extra: list[str], time_budget: str = "") -> None:
    screen = app.train_screen
    screen.query_one("#corpus").value = str(corpus)
    screen.query_one("#time").value = time_budget
    screen.query_one("#extra").value = " ".join(extra)


def kill_quietly(proc: TrainingProcess | None) -> None:
    if proc is not None and proc.pid is not None and proc.alive():
        os.kill(proc.pid, signal.SIGCONT)
        os.kill(proc.pid, signal.SIGKILL)
        if proc.popen is not None:
            proc.popen.wait(10)


def process_state(pid: int) -> str | None:
    stat = Path(f"/proc/{pid}/stat")
    return stat.read_text().rsplit(")", 1)[1].split()[0] if stat.exists() else None


@pytest.fixture(autouse=True)
def no_bundled_models(monkeypatch):
    """The repository's built-in models would otherwise be "the latest model" in every test."""
    monkeypatch.setattr("charnn.runtime.runs.bundled_models", lambda kind=None: [])


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory) -> Path:
    """A tiny trained language model (run directory), made once for the module."""
    root = tmp_path_factory.mktemp("tui-lm")
    corpus = root / "words.txt"
    corpus.write_text("\n".join(f"the {a} {b} sat on the {c}." for a in ("red", "old", "small")
                                for b in ("cat", "dog") for c in ("mat", "hill", "sea")) * 4 + "\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHARNN_HOME", str(root / "home"))
        mp.setattr("sys.stderr", io.StringIO())
        assert main(["train", str(corpus), *tiny_args("--steps", "20", "--eval-every", "10"),
                     "--out", str(root / "words-run"), "--quiet"]) == 0
    return root / "words-run"


@pytest.fixture
def home_with_model(charnn_home, lm_run) -> Path:
    """This test's CHARNN_HOME holding a copy of the trained run, so it is "the latest model"."""
    target = charnn_home / "runs" / lm_run.name
    shutil.copytree(lm_run, target)
    return target


# -- Train ------------------------------------------------------------------------------


@run_async
async def test_training_from_the_form_shows_steps_loss_points_samples_and_the_checkpoint(small_text):
    app = CharnnApp()
    async with app.run_test(size=(100, 30)) as pilot:
        fill_form(app, small_text, tiny_args("--steps", "30", "--eval-every", "10"))
        await pilot.press("ctrl+s")
        screen = app.train_screen
        training = app.training
        try:
            await wait_for(pilot, lambda: training.state.status in ("done", "failed"), "the run to finish")
        finally:
            kill_quietly(training.process)
        state = training.state
        assert state.status == "done" and state.done_reason == "budget", notices(app)
        assert state.step == 30 and state.best_val_bpc is not None
        chart = screen.query_one(LossChart)
        assert len(chart.train) >= 1 and len(chart.val) == 3  # evaluations at 10, 20 and 30
        samples = screen.query_one(SampleLog).samples
        assert [s.step for s in samples] == [30, 20, 10]  # newest on top
        assert (Path(state.run_dir) / "best.pt").is_file() and (Path(state.run_dir) / "last.pt").is_file()
        info = json.loads((Path(state.run_dir) / "run.json").read_text())  # the figure the model lists show
        figure = score(info["held_out_bpc"], info["best_val_bpc"])
        assert any(f"Finished at step 30; {figure};" in n for n in notices(app)), notices(app)
        assert "finished" in app.training_status and f"· {figure}" in app.training_status
        assert not (Path(state.run_dir) / "trainer.json").exists()  # no stale pid left behind


@run_async
async def test_the_sample_log_keeps_the_newest_samples_and_reuses_its_widgets(monkeypatch):
    from charnn.tui.widgets import sample_log

    monkeypatch.setattr(sample_log, "MAX_SAMPLES", 3)
    app = CharnnApp()
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.train_screen.query_one(SampleLog)
        for step in range(1, 6):
            log.add(step, f"text {step}", 3.0 - step / 10)
            await pilot.pause()
        samples = log.samples
        assert [(s.step, s.text) for s in samples] == [(5, "text 5"), (4, "text 4"), (3, "text 3")]
        assert samples[0].border_title == "step 5 · val 2.500 bpc"
        assert "text 5" in str(samples[0].render())  # the rewritten widget shows its new text
        ids = {id(s) for s in samples}
        log.add(6, "text 6")
        await pilot.pause()
        assert {id(s) for s in log.samples} == ids  # full: no new widget, the oldest was reused


@run_async
async def test_t_flips_the_sample_pane_between_newest_first_and_the_time_lapse(monkeypatch):
    from charnn.training.events import Sample
    from charnn.tui.widgets import sample_log

    monkeypatch.setattr(sample_log, "MAX_SAMPLES", 4)
    app = CharnnApp()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.train_screen
        screen.begin_run()  # the dashboard, as a run shows it
        log = screen.query_one(SampleLog)
        for step in (10, 20, 30):
            screen.show_event(Sample(step=step, text=f"text {step}"))
        await pilot.pause()
        footer = {b.binding.key: b.binding.description for b in screen.active_bindings.values()}
        assert footer["t"] == "Time-lapse" and log.border_title == "samples · newest first"
        assert [s.step for s in log.samples] == [30, 20, 10]
        await pilot.press("t")
        assert [s.step for s in log.samples] == [10, 20, 30]  # one text, oldest first
        assert log.border_title == "samples · time-lapse, oldest first"
        footer = {b.binding.key: b.binding.description for b in screen.active_bindings.values()}
        assert footer["t"] == "Newest first"
        for step in (40, 50):  # new samples join the end of the time-lapse; full, the oldest goes
            screen.show_event(Sample(step=step, text=f"text {step}"))
        await pilot.pause()
        assert [(s.step, s.text) for s in log.samples] == [(20, "text 20"), (30, "text 30"), (40, "text 40"),
                                                           (50, "text 50")]
        await pilot.press("t")
        assert [s.step for s in log.samples] == [50, 40, 30, 20]
        screen.show_event(Sample(step=60, text="text 60"))
        await pilot.pause()
        assert [s.step for s in log.samples] == [60, 50, 40, 30]


@run_async
async def test_pause_resume_and_stop_save_a_resumable_checkpoint(small_text):
    app = CharnnApp()
    async with app.run_test(size=(80, 24)) as pilot:
        fill_form(app, small_text, tiny_args("--steps", "1000000", "--eval-every", "1000000"))
        await pilot.press("ctrl+s")
        training = app.training
        proc = None
        try:
            await wait_for(pilot, lambda: training.state.step >= 2, "training steps")
            proc = training.process
            await pilot.press("space")
            assert training.state.status == "paused" and proc.paused
            if process_state(proc.pid) is not None:
                await wait_for(pilot, lambda: process_state(proc.pid) == "T", "the trainer to stop running", 10)
            await pilot.press("space")
            assert training.state.status == "training" and not proc.paused
            await pilot.press("s")
            assert training.state.status in ("stopping", "done")  # a tiny run may finish saving at once
            await wait_for(pilot, lambda: training.state.status in ("done", "failed"), "the stopped run to finish")
        finally:
            kill_quietly(proc or training.process)
        assert training.state.done_reason == "stopped", notices(app)
        run_dir = Path(training.state.run_dir)
        assert (run_dir / "last.pt").is_file()
        assert main(["train", "--resume", str(run_dir), "--steps", str(training.state.step + 2), "-q"]) == 0


@run_async
async def test_an_unreadable_corpus_is_a_notification_not_a_crash(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 au lait\n".encode("latin-1") * 50)
    app = CharnnApp()
    async with app.run_test() as pilot:
        fill_form(app, bad, tiny_args("--steps", "5"))
        await pilot.press("ctrl+s")
        screen = app.train_screen
        training = app.training
        try:
            await wait_for(pilot, lambda: training.state.status == "failed", "the failure to be reported")
        finally:
            kill_quietly(training.process)
        assert any("UTF-8" in n or "utf-8" in n for n in notices(app)), notices(app)
        assert screen.showing_form  # back on the form to fix it
        fill_form(app, tmp_path / "missing.txt", [])
        await pilot.press("ctrl+s")
        assert any("does not exist" in n for n in notices(app))


@run_async
async def test_quit_while_training_can_stop_and_save(small_text):
    app = CharnnApp(train_args=[str(small_text), *tiny_args("--steps", "1000000", "--eval-every", "1000000")])
    async with app.run_test() as pilot:
        training = app.training
        try:
            await wait_for(pilot, lambda: training.state.step >= 1, "training steps")
            await pilot.press("ctrl+q")
            assert isinstance(app.screen, QuitDialog)
            await pilot.press("s")
            await wait_for(pilot, lambda: not training.process.alive(), "the trainer to save and exit")
            await wait_for(pilot, lambda: app._exit, "the app to close")
        finally:
            kill_quietly(training.process)
    assert training.state.done_reason == "stopped"
    assert (Path(training.state.run_dir) / "last.pt").is_file()
    assert "is saved in" in (app.farewell or "")


@run_async
async def test_keep_training_in_the_background_then_reattach_and_stop(small_text):
    app = CharnnApp(train_args=[str(small_text), *tiny_args("--steps", "1000000", "--eval-every", "1000000")])
    proc = None
    try:
        async with app.run_test() as pilot:
            screen = app.train_screen
            training = app.training
            await wait_for(pilot, lambda: training.state.run_name and training.state.step >= 1, "training steps")
            proc = training.process
            await pilot.press("ctrl+q")
            await pilot.press("b")
            await wait_for(pilot, lambda: app._exit, "the app to close")
        name = training.state.run_name
        assert proc.alive(), "the trainer should keep running after the app closed"
        assert f"charnn tui --run {name}" in app.farewell and f"kill -INT {proc.pid}" in app.farewell

        again = CharnnApp(attach_process=TrainingProcess.attach(name))
        async with again.run_test() as pilot:
            screen = again.train_screen
            training = again.training
            await wait_for(pilot, lambda: training.state.run_name == name, "the run's history to replay")
            assert training.process.controllable and len(screen.query_one(LossChart).train) >= 1
            await pilot.press("s")
            await wait_for(pilot, lambda: training.state.status in ("done", "failed"), "the run to stop")
            assert training.state.done_reason == "stopped"
    finally:
        kill_quietly(proc)


# -- Generate ---------------------------------------------------------------------------


async def open_generate(pilot, app) -> GenerateScreen:
    await pilot.press("f2")
    screen = app.screen
    assert isinstance(screen, GenerateScreen)
    await wait_for(pilot, lambda: screen.loaded is not None, "the latest model to load", 60)
    return screen


@run_async
async def test_generate_with_a_seed_and_temperature_streams_the_same_text_as_the_library(home_with_model):
    from charnn.config import SampleConfig
    from charnn.decoding.sampling import generate_text
    from charnn.runtime.loading import load_model

    app = CharnnApp()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_generate(pilot, app)
        assert screen.loaded.path.parent.name == home_with_model.name
        await pilot.press("minus", "minus", "minus")
        assert screen.settings.temperature == pytest.approx(0.5)
        assert "temp 0.50" in str(screen.query_one("#gen-settings").render())
        await pilot.press("o")
        dialog = app.screen
        dialog.query_one("#opt-seed").value = "7"
        dialog.query_one("#opt-length").value = "80"
        dialog.query_one("#opt-length").focus()
        await pilot.press("enter")
        assert screen.settings.seed == 7 and screen.settings.length == 80
        await pilot.press("p", *"the ", "enter")
        pane = screen.query_one("#out-a", TextStream)
        await wait_for(pilot, lambda: not screen.generating, "generation to finish", 60)
    loaded = load_model(str(home_with_model), "lm", "cpu")
    expected = "".join(generate_text(loaded.model, loaded.tokenizer,
                                     SampleConfig(temperature=0.5, length=80, prime="the ", seed=7)))
    assert pane.prompt == "the " and pane.text == expected and len(expected) > 0


@run_async
async def test_compare_two_temperatures_side_by_side_and_save(home_with_model, tmp_path):
    app = CharnnApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_generate(pilot, app)
        await pilot.press("c")
        assert screen.query_one("#out-b").display
        await pilot.press("right_square_bracket")
        assert screen.settings.temperature_b == pytest.approx(1.3)
        assert screen.query_one("#out-b").border_title == "temperature 1.30"
        await pilot.press("g")
        await wait_for(pilot, lambda: not screen.generating, "both panes to finish", 60)
        a, b = screen.query_one("#out-a", TextStream), screen.query_one("#out-b", TextStream)
        assert not any("failed" in n for n in notices(app)), notices(app)
        assert len(a.text) == len(b.text) == 500 and a.text != b.text  # char model: 500 tokens each
        await pilot.press("s")
        target = tmp_path / "out.txt"
        app.screen.query_one("#save-path").value = str(target)
        await pilot.press("enter")
        saved = target.read_text()
        assert "--- temperature 0.80 ---" in saved and "--- temperature 1.30 ---" in saved
        assert a.text in saved and b.text in saved


@run_async
async def test_generate_without_any_model_says_how_to_get_one():
    app = CharnnApp()
    async with app.run_test() as pilot:
        await pilot.press("f2")
        screen = app.screen
        assert "no model yet" in str(screen.query_one("#gen-model").render())
        await pilot.press("g")
        assert any("No model to generate with" in n for n in notices(app))


# -- Models -----------------------------------------------------------------------------


@run_async
async def test_models_lists_runs_opens_one_in_generate_and_deletes_with_confirmation(home_with_model):
    app = CharnnApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        screen = app.screen
        table = screen.query_one("#models-table")
        assert table.row_count == 1
        row = table.get_row_at(0)
        assert row[0] == home_with_model.name and row[2] == "char" and row[5] == "20"
        await pilot.press("enter")
        generate = app.screen
        assert isinstance(generate, GenerateScreen)
        await wait_for(pilot, lambda: generate.loaded is not None, "the chosen model to load", 60)
        assert generate.explicit and generate.loaded.path.parent == home_with_model
        await pilot.press("f4", "d")
        await pilot.press("n")  # the default answer keeps it
        assert home_with_model.exists()
        await pilot.press("d", "y")
        assert not home_with_model.exists() and table.row_count == 0


@run_async
async def test_models_lists_a_built_in_model_with_its_size_and_score(home_with_model, tmp_path, monkeypatch):
    from charnn.report import score_cell
    from charnn.runtime.checkpoint import export_checkpoint

    shipped = export_checkpoint(home_with_model / "best.pt", tmp_path / "shipped-lm.pt")
    summary = json.loads((tmp_path / "shipped-lm.json").read_text())  # written beside it by export
    monkeypatch.setattr("charnn.runtime.runs.bundled_models", lambda kind=None: [shipped])
    app = CharnnApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        table = app.screen.query_one("#models-table")
        assert table.row_count == 2
        row = table.get_row_at(1)
        assert row[0] == "shipped-lm" and row[7] == "built-in"
        assert row[3] == f"{summary['layers']}×{summary['hidden']}" and row[5] == f"{summary['step']:,}"
        assert row[6] == score_cell(summary["held_out_bpc"], summary["best_val_bpc"]) != "-"


# -- Chat -------------------------------------------------------------------------------


@run_async
async def test_chat_without_a_chat_model_says_how_to_train_one():
    app = CharnnApp()
    async with app.run_test() as pilot:
        await pilot.press("f3")
        text = str(app.screen.query_one("#chat-empty").render())
        assert "No chat model yet" in text and "charnn train --mode chat" in text


@run_async
async def test_chat_streams_a_reply_shows_context_and_takes_keys(charnn_home, tmp_path):
    from tests.test_seq2seq import write_synthetic

    corpus = write_synthetic(tmp_path / "dialogue.txt", n=60)
    assert main(["train", str(corpus), "--mode", "chat", "--tokenizer", "char", *tiny_args("--steps", "6", "--eval-every", "6"),
                 "--quiet"]) == 0
    app = CharnnApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3")
        screen = app.screen
        await wait_for(pilot, lambda: screen.session is not None, "the chat model to load", 60)
        await pilot.press(*"cats please", "enter")
        await wait_for(pilot, lambda: not screen.replying, "the reply", 60)
        messages = list(screen.query(ChatMessage))
        assert [m.who for m in messages] == ["user", "model"] and messages[1].text
        assert screen.session.history[0] == "cats please"
        assert "cats please" in str(screen.query_one("#context-panel").render())
        panel = screen.query_one("#context-panel")
        await pilot.press("escape", "h")  # the heat strip: what the reply looked at, on the context's words
        await wait_for(pilot, lambda: panel.border_title == "what the last reply looked at", "the heat strip", 30)
        assert "cats" in str(panel.render()) and "attention of the last reply" in str(panel.render())
        await pilot.press("h")
        assert panel.border_title == "context the model reads"
        await pilot.press("escape", "minus", "right_square_bracket")
        assert screen.session.temperature == pytest.approx(0.7)
        assert screen.session.context_turns == screen.session.default_context_turns + 1
        from charnn.presets import CHAT_BEAM_GUARDS, CHAT_DECODING

        settings = screen.query_one("#chat-settings")
        assert f"best of {CHAT_DECODING['samples']}" in str(settings.render())
        await pilot.press("s")  # sample-and-rank: 8 -> 1 draw (wrapping round)
        assert screen.session.samples == 1 and "best of 1" in str(settings.render())

        await pilot.press("b")  # beam search, with the beam's own guards
        assert (screen.session.beam, screen.session.mmi, screen.session.min_words) == (
            5, CHAT_BEAM_GUARDS["mmi"], CHAT_BEAM_GUARDS["min_words"])
        mmi, min_words = screen.session.mmi, screen.session.min_words
        await pilot.press("a", "n", "c")
        assert screen.session.beam == 5 and screen.session.mmi != mmi and screen.session.min_words != min_words
        panel = screen.query_one("#context-panel")
        assert "candidates" in panel.border_title and " score " in str(panel.render())  # the last reply's n-best
        await pilot.press("c")
        assert panel.border_title == "context the model reads"
        await pilot.press("r")
        assert screen.session.history == [] and not list(screen.query(ChatMessage))


@run_async
async def test_resume_from_models_continues_the_run_and_keeps_its_curve(home_with_model):
    app = CharnnApp()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f4", "r")
        app.screen.query_one("#number").value = "5"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.training.process is not None, "the resumed run to start", 10)
        screen = app.train_screen
        training = app.training
        try:
            await wait_for(pilot, lambda: training.state.status in ("done", "failed"), "the resumed run to finish")
        finally:
            kill_quietly(training.process)
        assert training.state.done_reason == "budget" and training.state.step == 25, notices(app)
        assert Path(training.state.run_dir) == home_with_model
        assert min(screen.query_one(LossChart).train.xs) <= 20  # the curve from before the resume


@run_async
async def test_every_screen_action_is_in_the_command_palette(home_with_model):
    app = CharnnApp()
    async with app.run_test() as pilot:
        for key, expected in (("f1", {"Start training", "Browse"}),
                              ("f2", {"Generate", "Temp down", "Temp up", "Compare", "Save", "Model"}),
                              ("f4", {"Open", "Resume training", "Delete"})):
            await pilot.press(key)
            titles = {c.title for c in app.get_system_commands(app.screen)}
            assert expected <= titles and {"Train screen", "Generate screen", "Quit"} <= titles
            assert "Move cursor left" not in titles  # widget keys stay out


@run_async
async def test_a_built_in_chat_model_is_offered_on_first_start_and_opens_in_chat(monkeypatch):
    from charnn import paths

    built_in = sorted(paths.bundled_checkpoints_dir().glob("*-chat.pt"))
    if not built_in:
        pytest.skip("no built-in chat model in checkpoints/")
    monkeypatch.setattr("charnn.runtime.runs.bundled_models",
                        lambda kind=None: built_in if kind in (None, "chat") else [])
    app = CharnnApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert any(f"F3 chats with {built_in[0].stem}" in n for n in notices(app)), notices(app)
        await pilot.press("f3")
        screen = app.screen
        await wait_for(pilot, lambda: screen.session is not None, "the built-in chat model to load", 60)
        assert built_in[0].stem in str(screen.query_one("#chat-model").render())


def test_gpu_memory_from_step_events_reaches_the_run_state():
    from charnn.training.events import Step, from_json, to_json
    from charnn.tui.run_state import RunState

    step = Step(step=5, epoch=0.1, loss=2.0, bpc=2.9, lr=1e-3, tokens_per_s=1e5, elapsed_s=3.0,
                eta_s=10.0, progress=0.2, tokens=1000, gpu_mem_mib=1234.5)
    state = RunState()
    state.apply(from_json(to_json(step)))
    assert state.gpu_mem_mib == 1234.5
    state.apply(Step(step=6, epoch=0.1, loss=2.0, bpc=2.9, lr=1e-3, tokens_per_s=1e5, elapsed_s=3.0,
                     eta_s=10.0, progress=0.2, tokens=1000))
    assert state.gpu_mem_mib is None  # CPU runs carry none, and the row is hidden


def test_the_form_leaves_the_size_to_charnn_unless_one_is_chosen(small_text):
    from charnn.tui.screens.train import build_train_args

    auto = build_train_args(str(small_text), "char", "auto", "5m", "", "")
    assert "--hidden" not in auto and "--layers" not in auto and auto[-2:] == ["--time", "5m"]
    medium = build_train_args(str(small_text), "char", "medium", "", "", "")
    assert medium[medium.index("--layers") + 1 :][:3] == ["2", "--hidden", "256"]


def test_the_form_takes_a_built_in_corpus_name_as_the_command_line_does(tmp_path, monkeypatch):
    from charnn.tui.screens.train import build_train_args

    monkeypatch.chdir(tmp_path)  # no file of that name here
    assert build_train_args("tinyshakespeare", "char", "auto", "90s", "", "")[0] == "tinyshakespeare"
    with pytest.raises(ValueError, match="does not exist and is not a built-in corpus"):
        build_train_args("no-such-corpus", "char", "auto", "90s", "", "")
