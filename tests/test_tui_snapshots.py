"""Snapshots of every TUI screen at 80x24 and 120x40 (pytest-textual-snapshot).

The screens are filled from canned events and text, so the pictures do not
depend on timing, paths or the machine. Update with ``pytest --snapshot-update``.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import pytest

from charnn.training.events import Checkpoint, Eval, Sample, Start, Step
from charnn.tui.app import CharnnApp

SIZES = [(80, 24), (120, 40)]
FIXED_HOME = Path("/tmp/charnn-tui-snapshots")  # shown on screen, so it must not vary
SAMPLES = {  # invented text showing noise turning into words
    100: "tPe,w hoRt\nanf wo! the sh\nilt moe yod,",
    200: "And that he shall not so\nthe wort of mere and loke,\nWhat sall the kenger",
    300: "KING:\nWhat, shall I see thee here?\nI will not stay to mend the world.",
}


def canned_run() -> list:
    events: list = [Start(
        run_dir="/runs/shakespeare-demo", run_name="shakespeare-demo", mode="lm", device="cpu (2 threads)",
        parameters=215_617, train_tokens=1_003_854, val_tokens=111_540, vocab_size=65, tokenizer="char",
        budget="1000 steps", settings={"model": {"layers": 2, "hidden": 128, "cell": "lstm"}},
    )]
    best = math.inf
    for step in range(5, 321, 5):
        bpc = 1.9 + 2.3 * math.exp(-step / 70) + 0.05 * math.sin(step / 7)
        events.append(Step(step=step, epoch=step * 4096 / 1_003_854, loss=bpc * 0.69, bpc=bpc, lr=3e-3,
                           tokens_per_s=6150.0, elapsed_s=step * 0.66, eta_s=(1000 - step) * 0.66,
                           progress=step / 1000, tokens=step * 4096))
        if step % 100 == 0:
            val = bpc + 0.08
            best = min(best, val)
            events.append(Eval(step=step, val_loss=val * 0.69, val_bpc=val, best_val_bpc=best, improved=True))
            events.append(Sample(step=step, text=SAMPLES[step], val_bpc=val))
            events.append(Checkpoint(step=step, path="/runs/shakespeare-demo/best.pt", kind="best"))
    return events


@pytest.fixture(autouse=True)
def no_bundled_models(monkeypatch):
    monkeypatch.setattr("charnn.runtime.runs.bundled_models", lambda kind=None: [])


@pytest.fixture
def fixed_home(monkeypatch):
    """Two runs on disk at a fixed path, with fixed dates (UTC)."""
    shutil.rmtree(FIXED_HOME, ignore_errors=True)
    for name, info in {
        "shakespeare-demo": {"mode": "lm", "tokenizer": "char", "layers": 2, "hidden": 128, "parameters": 215_617,
                             "step": 2000, "best_val_bpc": 1.712, "held_out_bpc": 1.798,
                             "updated": 1_760_000_000},
        "subwords-demo": {"mode": "lm", "tokenizer": "bpe", "layers": 2, "hidden": 256, "parameters": 1_234_567,
                          "step": 500, "best_val_bpc": 1.954, "updated": 1_750_000_000},
    }.items():
        run = FIXED_HOME / "runs" / name
        run.mkdir(parents=True)
        (run / "run.json").write_text(json.dumps({"name": name, "corpus": f"/data/{name}.txt", **info}))
    monkeypatch.setenv("CHARNN_HOME", str(FIXED_HOME))
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield FIXED_HOME
    shutil.rmtree(FIXED_HOME, ignore_errors=True)
    monkeypatch.delenv("TZ")
    time.tzset()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_train_form(snap_compare, size):
    assert snap_compare(CharnnApp(), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_train_dashboard_mid_run(snap_compare, size):
    async def run_before(pilot):
        pilot.app.show_events(canned_run())
        await pilot.pause()

    assert snap_compare(CharnnApp(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_generate_comparing_two_temperatures(snap_compare, size):
    async def run_before(pilot):
        await pilot.press("f2", "c", "minus", "minus", "minus")
        screen = pilot.app.screen
        screen._set_model_line("shakespeare-demo/best.pt · char 65 · 2×128 lstm · 215.6k params · val 1.712 bpc")
        a, b = screen.query_one("#out-a"), screen.query_one("#out-b")
        a.reset("KING:")
        a.append("\nI will not stay to see the world again,\nAnd that the king is here to see the state.")
        b.reset("KING:")
        b.append("\nWhit, hast thou crown'd? Upbraid no fiery\nwoe; the gentler shrew mayst holp my Tybalt.")
        await pilot.pause()

    assert snap_compare(CharnnApp(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_chat_before_any_chat_model(snap_compare, size):
    assert snap_compare(CharnnApp(), terminal_size=size, press=["f3"])


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_models_list(snap_compare, fixed_home, size):
    assert snap_compare(CharnnApp(), terminal_size=size, press=["f4"])
