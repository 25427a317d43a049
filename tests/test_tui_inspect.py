"""The Inspect screen (F5), runs side by side in Models, novelty in Generate, `models --compare`."""
# ruff: noqa: F811 - the fixtures imported from test_tui are parameters here

from __future__ import annotations

import json
import shutil

from charnn.cli import main
from charnn.tui.app import CharnnApp
from charnn.tui.screens.inspect import InspectScreen
from charnn.tui.widgets.compare_chart import CompareChart
from charnn.tui.widgets.inspect_view import InspectView
from charnn.tui.widgets.text_stream import TextStream
from tests.test_tui import home_with_model, lm_run, no_bundled_models, notices, run_async, wait_for  # noqa: F401

TEXT = "the red cat sat on the mat.\nthe old dog sat on the hill.\n"


async def open_inspect(pilot, app) -> InspectScreen:
    await pilot.press("f5")
    screen = app.screen
    assert isinstance(screen, InspectScreen)
    await wait_for(pilot, lambda: screen.loaded is not None, "the latest model to load", 60)
    return screen


@run_async
async def test_inspect_colours_the_text_shows_guesses_at_the_cursor_and_the_finder_picks_a_unit(home_with_model):
    app = CharnnApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_inspect(pilot, app)
        await pilot.press("e", *"the red cat", "escape")
        await wait_for(pilot, lambda: screen.result is not None, "the inspection", 60)
        assert screen.result.text == "the red cat"
        screen.set_text(TEXT)
        await wait_for(pilot, lambda: screen.result.text == TEXT, "the second inspection", 60)
        view = screen.query_one(InspectView)
        assert view.text == TEXT and len(view.colours) == len(TEXT) and len(set(view.colours)) > 3
        assert "bits/char" in str(screen.query_one("#insp-summary").render())
        await pilot.press("right", "right")
        assert view.cursor == 2
        panel = str(screen.query_one("#insp-cursor").render())
        assert "'e' at 2" in panel and "the model expected" in panel and "%" in panel
        units = screen.query_one("#insp-units")
        assert units.option_count > 0
        before = list(view.colours)
        await pilot.press("u", "down", "enter")
        chosen = screen.result.findings.matches[units.highlighted]
        assert screen.colour_by is not None and (screen.colour_by.layer, screen.colour_by.unit) == (chosen.layer, chosen.unit)
        assert view.colours != before and "unit" in view.border_title
        assert "▸" in str(screen.query_one("#insp-cursor").render())  # the chosen unit's value at the cursor
        await pilot.press("s")
        assert screen.colour_by is None and view.colours == before
        units.highlighted = None
        await pilot.press("u", "enter")  # the finder's best unit, without an arrow key first
        first = screen.result.findings.matches[0]
        assert screen.colour_by is not None and (screen.colour_by.unit, screen.colour_by.signal) == (first.unit, first.signal)
        await pilot.press("s")


@run_async
async def test_inspect_says_one_sentence_for_an_empty_text_and_unknown_characters(home_with_model):
    app = CharnnApp()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_inspect(pilot, app)
        screen.set_text("   ")
        await pilot.pause()
        assert any("The text is empty" in n for n in notices(app))
        screen.set_text("the cat ☃ sat")
        await wait_for(pilot, lambda: any("☃" in n or "never saw" in n or "not in" in n for n in notices(app)),
                       "the unknown character to be named", 60)
        assert screen.result is None


def two_runs(home_with_model):
    other = home_with_model.parent / "words-other"
    shutil.copytree(home_with_model, other)
    info = json.loads((other / "run.json").read_text())
    (other / "run.json").write_text(json.dumps({**info, "name": "words-other", "updated": info["updated"] + 1}))
    return home_with_model.name, "words-other"


@run_async
async def test_marking_two_runs_overlays_their_validation_curves(home_with_model):
    first, second = two_runs(home_with_model)
    app = CharnnApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        screen = app.screen
        chart = screen.query_one(CompareChart)
        assert not chart.display
        await pilot.press("space", "down", "space")
        assert chart.display and [c.name for c in chart.curves] == [second, first]
        lines = chart.lines()
        assert len(lines) == 2 and all(len(line.xs) == 2 for line in lines)  # evaluations at steps 10, 20
        assert chart.axis == "tokens"
        await pilot.press("x")
        assert chart.axis == "seconds"
        await pilot.press("space")
        assert not chart.display  # one marked run is nothing to compare


@run_async
async def test_novelty_key_highlights_text_copied_from_the_training_text(home_with_model):
    app = CharnnApp()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f2")
        screen = app.screen
        await wait_for(pilot, lambda: screen.loaded is not None, "the model to load", 60)
        await pilot.press("n")
        assert any("Generate some text first" in n for n in notices(app))
        pane = screen.query_one("#out-a", TextStream)
        pane.reset("")
        pane.append("the red cat sat on the mat.\nthe old dog sat zzz qqq xxx")  # a line of the corpus, then not
        await pilot.press("n")
        await wait_for(pilot, lambda: "new" in (pane.border_subtitle or ""), "the novelty figure", 60)
        assert pane.highlights and pane.highlights[0][0] == 0 and pane.highlights[0][1] >= 20
        assert "% new" in pane.border_subtitle


def test_models_compare_prints_scores_differences_and_common_points(home_with_model, capsys):
    first, second = two_runs(home_with_model)
    info = json.loads((home_with_model / "run.json").read_text())
    assert main(["models", "--compare", first, second]) == 0
    out = capsys.readouterr().out
    assert first in out and second in out and f"{info['best_val_bpc']:.3f}" in out
    assert "the runs' settings are the same" in out and "val bits/char at tokens seen" in out
    assert main(["models", "--compare", first]) == 2
    assert "at least two runs" in capsys.readouterr().err
    assert main(["models", "--compare", first, "no-such-run"]) == 2
    assert "No run named 'no-such-run'" in capsys.readouterr().err
