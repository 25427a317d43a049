"""The newcomer smoke script reads README's blocks right and judges commands the way its docstring says
(driven here with stand-in `charnn` scripts, so nothing is installed and nothing trains)."""

from __future__ import annotations

import os
import stat
from argparse import Namespace

import pytest

from benchmarks import newcomer_smoke as smoke

README = """# charnn

Some words.

## Set up

```sh
git clone https://example.invalid/charnn.git && cd charnn
python -m pip install -e ".[dev]"   # one command
```

## Run the tests

```sh
pytest -q
```

## Quick start

```sh
charnn generate --temp 0.8      # the default model
charnn train tinyshakespeare \\
    --time 30s
charnn train
$ charnn chat
```

```python
print("not a shell block")
```

### A subsection stays in its section

```bash
charnn tui
```

## Main flags

```sh
charnn train --help
```
"""


def test_readme_blocks_are_found_under_their_level_two_headings():
    blocks = smoke.parse_blocks(README)
    assert set(blocks) == {"Set up", "Run the tests", "Quick start", "Main flags"}
    assert smoke.block_under(blocks, "run the tests") == "pytest -q"
    quick = blocks["Quick start"]
    assert len(quick) == 2 and quick[1] == "charnn tui"  # the python block is skipped
    assert smoke.commands_of(quick[0]) == [
        "charnn generate --temp 0.8      # the default model",
        "charnn train tinyshakespeare      --time 30s",
        "charnn train",
        "charnn chat",
    ]


def test_setup_skips_cloning_and_runs_the_rest_with_errors_stopping_it():
    script = smoke.setup_script(smoke.block_under(smoke.parse_blocks(README), "Set up"))
    assert script.startswith("set -e\n")
    assert "git clone" not in script and "cd charnn" not in script
    assert 'python -m pip install -e ".[dev]"' in script


@pytest.mark.parametrize("command, kind", [
    ("charnn generate --temp 0.8", "plain"),
    ("charnn train", "train-unbounded"),
    ("charnn train tinyshakespeare --time 30s", "plain"),
    ("charnn train notes.txt --steps=200", "plain"),
    ("charnn chat --temp 0.7", "chat"),
    ("charnn tui", "tui"),
    ("charnn train x.txt --tui", "tui"),
    ("pytest -q", "plain"),
])
def test_commands_are_classified_by_how_they_end(command, kind):
    assert smoke.classify(command) == kind


@pytest.fixture
def fake_charnn(tmp_path) -> dict[str, str]:
    """A stand-in `charnn` on PATH: `train` runs until Ctrl-C, `chat` answers a line, others print and exit."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "charnn"
    script.write_text("""#!/usr/bin/env bash
case "$1" in
  train) trap 'echo saved; exit 0' INT; echo "step 1"; while true; do sleep 0.1; done ;;
  chat) echo "you> "; while read -r line; do echo "bot: hi, you said $line"; echo "you> "; done; exit 0 ;;
  silent) sleep 30 ;;
  broken) echo "charnn: no model"; exit 2 ;;
  *) echo "text from $1" ;;
esac
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return env


def _args(**kw) -> Namespace:
    return Namespace(**{"timeout": 10.0, "train_cutoff": 0.5, "stop_timeout": 10.0, "say": "hello", **kw})


def test_plain_command_passes_on_exit_zero_with_output(fake_charnn, tmp_path):
    r = smoke.run_quick_start("charnn generate --temp 0.8", tmp_path, fake_charnn, _args())
    assert r.ok and not r.cut_off and r.rc == 0 and "text from generate" in r.output
    assert r.first_output_s is not None


def test_failing_or_silent_commands_fail_with_a_reason(fake_charnn, tmp_path):
    broken = smoke.run_quick_start("charnn broken", tmp_path, fake_charnn, _args())
    assert not broken.ok and "exit 2" in broken.note and "no model" in broken.note
    silent = smoke.run_quick_start("charnn silent", tmp_path, fake_charnn, _args(timeout=1.0))
    assert not silent.ok and "printed nothing" in silent.note


def test_unbounded_train_is_cut_off_with_ctrl_c_and_must_exit_cleanly(fake_charnn, tmp_path):
    r = smoke.run_quick_start("charnn train", tmp_path, fake_charnn, _args())
    assert r.ok and r.cut_off and r.rc == 0 and "saved" in r.output


def test_chat_is_spoken_to_and_must_answer(fake_charnn, tmp_path):
    r = smoke.run_quick_start("charnn chat", tmp_path, fake_charnn, _args())
    assert r.ok and r.cut_off and "bot: hi, you said hello" in r.output
    assert "it answered" in r.note


def test_table_marks_cut_off_commands(capsys):
    results = [smoke.Result("set up", "pip install -e .", ok=True, seconds=1.0),
               smoke.Result("quick start", "charnn train", ok=True, cut_off=True, seconds=2.0, first_output_s=1.0),
               smoke.Result("quick start", "charnn chat", ok=False, seconds=0.5, note="exit 2")]
    smoke.print_table(results)
    out = capsys.readouterr().out
    assert "PASS*" in out and "FAIL" in out and "2 passed, 1 failed" in out

