"""Interruptions and failures during training never lose the user's work (issue 7).

- Ctrl-C (SIGINT) and SIGTERM to a real ``charnn train`` process: it saves a
  resumable checkpoint and exits 0, and the run continues from that step.
- ``kill -9`` while a checkpoint is being written: the previous checkpoint stays
  whole and loadable. The default run does it a few times; the slow run does it
  50 times (``pytest -m slow``), the count the issue asks for.
- A NaN/inf loss: rollback to the last good state, a lower learning rate and a
  Notice; after repeated failures, an Error, a clean stop and the last good
  state on disk.
- Out of memory: an automatic retry at a smaller batch, saying so.
- A full disk or a read-only run directory: one clear sentence; the previous
  checkpoint survives.
"""

from __future__ import annotations

import errno
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from charnn.cli import main
from charnn.config import RunSettings
from charnn.errors import CharnnError
from charnn.runtime.checkpoint import load_checkpoint
from charnn.training.events import Checkpoint, Done, Error, Notice
from charnn.training.lm_task import LMTask
from charnn.training.trainer import MAX_NAN_RETRIES, train_stream
from tests.conftest import tiny_args

REPO = Path(__file__).resolve().parents[1]


def tiny_settings(corpus: Path, **train) -> RunSettings:
    s = RunSettings(corpus=str(corpus))
    s.model.layers, s.model.hidden = 1, 32
    s.train.batch_size, s.train.seq_len, s.train.threads = 8, 16, 1
    s.train.warmup_steps, s.train.sample_length = 2, 0
    for k, v in train.items():
        setattr(s.train, k, v)
    return s


def child_env(home: Path) -> dict:
    return {**os.environ, "CHARNN_HOME": str(home), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def all_finite(state: dict) -> bool:
    return all(torch.isfinite(v).all() for v in state.values() if torch.is_tensor(v) and v.is_floating_point())


# -- SIGINT / SIGTERM ------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_training_saves_a_resumable_checkpoint_and_exits_cleanly(signum, small_text, tmp_path,
                                                                               capsys):
    home = tmp_path / "home"
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "charnn", "train", str(small_text), *tiny_args(),
           "--steps", "1000000", "--eval-every", "100000", "--out", str(run), "--jsonl"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(home))
    try:
        for line in proc.stdout:  # wait until it is really training
            event = json.loads(line)
            if event["event"] == "step" and event["step"] >= 3:
                break
        proc.send_signal(signum)
        rest, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    events = [json.loads(line) for line in rest.splitlines()]
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopping after this step and saving" in err
    done = events[-1]
    assert done["event"] == "done" and done["reason"] == "stopped"
    ck = load_checkpoint(run / "last.pt")
    assert ck["step"] == done["step"] >= 3
    assert len(ck["history"]["train_loss"]) == ck["step"]

    assert main(["train", "--resume", str(run), "--steps", str(ck["step"] + 4), "-q"]) == 0
    resumed = load_checkpoint(run / "last.pt")
    assert resumed["step"] == ck["step"] + 4
    assert resumed["history"]["train_loss"][: ck["step"]] == ck["history"]["train_loss"]


# -- kill -9 while saving ---------------------------------------------------------------------

# Runs `charnn train` with every torch.save slowed down (a short sleep per write), so that
# the test can reliably kill the process while a checkpoint is half written.
SLOW_SAVE_DRIVER = """
import sys, time, torch
real_save = torch.save

class SlowFile:
    def __init__(self, f):
        self.f = f
    def write(self, b):
        time.sleep(0.001)
        return self.f.write(b)
    def flush(self):
        return self.f.flush()

def slow_save(obj, f, *args, **kwargs):
    return real_save(obj, SlowFile(f) if hasattr(f, "write") else f, *args, **kwargs)

torch.save = slow_save
from charnn.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _temporaries(run: Path) -> list[str]:
    try:
        return [n for n in os.listdir(run) if n.endswith(".tmp")]
    except FileNotFoundError:
        return []


def kill_while_saving(run: Path, home: Path, driver: Path, delay: float) -> dict:
    """Resume the run, SIGKILL it during a save, and check every file it had is still whole."""
    before = {name: load_checkpoint(run / name)["step"] for name in ("last.pt", "best.pt")}
    stale = set(_temporaries(run))  # left by earlier kills; cleared by the next successful save
    cmd = [sys.executable, str(driver), "train", "--resume", str(run), "--steps", "1000000", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=child_env(home))
    try:
        deadline = time.monotonic() + 120
        while not (saving := [n for n in _temporaries(run) if n.startswith((".last.pt.", ".best.pt."))
                              and n not in stale]):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no save started"
            time.sleep(0.002)
        time.sleep(delay)  # mid-write, during fsync/rename, or after (between or inside later saves)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    after = {}
    for name in ("last.pt", "best.pt"):
        ck = load_checkpoint(run / name)  # raises if half-written or corrupted
        assert ck["step"] >= before[name] and all_finite(ck["model"])
        after[name] = ck["step"]
    json.loads((run / "run.json").read_text())
    after["mid_write"] = saving[0] in _temporaries(run)
    return after


def run_kill_test(times: int, small_text: Path, tmp_path: Path, home: Path) -> None:
    run = tmp_path / "run"
    driver = tmp_path / "slow_save_driver.py"
    driver.write_text(SLOW_SAVE_DRIVER)
    s = tiny_settings(small_text, steps=2, eval_every=2)
    s.model.layers, s.model.hidden = 2, 64  # a few hundred kB per checkpoint
    list(train_stream(s, out=str(run)))
    rng = random.Random(7)
    survived = mid_write = 0
    for i in range(times):
        delay = rng.uniform(0.0, 0.2) if i % 2 == 0 else rng.uniform(0.2, 1.0)
        mid_write += kill_while_saving(run, home, driver, delay)["mid_write"]
        survived += 1
    print(f"kill -9 during save: previous checkpoint intact {survived}/{times} "
          f"({mid_write} killed with the new file half-written, the rest later: at fsync/rename, between saves or in a later save)")
    assert survived == times
    assert mid_write >= 1  # the kills really landed inside saves
    # a later save clears the temporaries the killed processes left, and the run goes on
    start = load_checkpoint(run / "last.pt")["step"]
    assert main(["train", "--resume", str(run), "--steps", str(start + 2), "-q"]) == 0
    assert _temporaries(run) == []
    assert load_checkpoint(run / "last.pt")["step"] == start + 2


def test_kill_9_while_saving_leaves_the_previous_checkpoint_intact(small_text, tmp_path, charnn_home):
    run_kill_test(2, small_text, tmp_path, charnn_home)


@pytest.mark.slow
def test_kill_9_while_saving_50_times_never_loses_the_checkpoint(small_text, tmp_path, charnn_home):
    run_kill_test(50, small_text, tmp_path, charnn_home)


# -- NaN / inf loss -----------------------------------------------------------------------------


def poison_loss(monkeypatch, bad_calls: set[int], value: float = float("nan")) -> list[int]:
    """Make LMTask.train_loss return ``value`` on the given call numbers (1-based)."""
    real = LMTask.train_loss
    calls = []

    def train_loss(self, model, step):
        calls.append(step)
        loss = real(self, model, step)
        return loss * value if len(calls) in bad_calls else loss

    monkeypatch.setattr(LMTask, "train_loss", train_loss)
    return calls


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_a_nan_loss_rolls_back_lowers_the_learning_rate_and_says_so(value, small_text, tmp_path, monkeypatch):
    poison_loss(monkeypatch, {7}, value)
    events = list(train_stream(tiny_settings(small_text, steps=10, eval_every=4), out=str(tmp_path / "r")))
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert any("rolled back to the last good state" in m and "halved the learning rate" in m for m in notices)
    done = [e for e in events if isinstance(e, Done)][0]
    assert done.reason == "budget" and done.step == 10
    ck = load_checkpoint(tmp_path / "r" / "last.pt")
    assert ck["lr_scale"] == 0.5
    assert all(math.isfinite(x) for x in ck["history"]["train_loss"]) and all_finite(ck["model"])


def test_a_nan_before_the_first_evaluation_rolls_back_to_the_start(small_text, tmp_path, monkeypatch):
    poison_loss(monkeypatch, {2})
    events = list(train_stream(tiny_settings(small_text, steps=6, eval_every=6), out=str(tmp_path / "r")))
    assert any(isinstance(e, Notice) and "rolled back" in e.message for e in events)
    assert [e for e in events if isinstance(e, Done)][0].reason == "budget"


def test_repeated_nan_stops_cleanly_with_the_last_good_checkpoint(small_text, tmp_path, monkeypatch):
    import shutil

    calls = poison_loss(monkeypatch, set(range(7, 100)))
    events = []
    for event in train_stream(tiny_settings(small_text, steps=50, eval_every=3), out=str(tmp_path / "r")):
        events.append(event)
        if isinstance(event, Checkpoint) and event.kind == "last" and event.step == 6:
            shutil.copy(event.path, tmp_path / "good.pt")  # the last good state, saved by the evaluation
    errors = [e.message for e in events if isinstance(e, Error)]
    assert len(errors) == 1 and "last good state" in errors[0] and "--lr" in errors[0]
    rollbacks = [e for e in events if isinstance(e, Notice) and "rolled back" in e.message]
    assert len(rollbacks) == MAX_NAN_RETRIES
    done = events[-1]
    assert isinstance(done, Done) and done.reason == "failed"
    assert len(calls) == 6 + MAX_NAN_RETRIES + 1  # it gave up; it did not keep grinding
    ck = load_checkpoint(tmp_path / "r" / "last.pt")
    good = load_checkpoint(tmp_path / "good.pt")
    assert all_finite(ck["model"])
    assert all(torch.equal(ck["model"][k], good["model"][k]) for k in good["model"])


def test_repeated_nan_through_the_cli_exits_non_zero_with_a_clear_message(small_text, capsys, monkeypatch,
                                                                          charnn_home):
    poison_loss(monkeypatch, set(range(3, 100)))
    code = main(["train", str(small_text), *tiny_args("--steps", "40", "--eval-every", "2", "--name", "nan")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "charnn: error: Loss became nan" in err and "done (failed)" in err
    assert all_finite(load_checkpoint(charnn_home / "runs" / "nan" / "last.pt")["model"])


# -- out of memory -------------------------------------------------------------------------------


def test_out_of_memory_retries_at_a_smaller_batch_and_says_which(small_text, tmp_path, monkeypatch):
    real = LMTask.train_loss

    def train_loss(self, model, step):
        if self.batcher.batch_size > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(self, model, step)

    monkeypatch.setattr(LMTask, "train_loss", train_loss)
    events = list(train_stream(tiny_settings(small_text, steps=4, eval_every=2), out=str(tmp_path / "r")))
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert "retrying automatically at --batch-size 4" in notices[0]
    assert "retrying automatically at --batch-size 2" in notices[1]
    assert [e for e in events if isinstance(e, Done)][0].step == 4
    ck = load_checkpoint(tmp_path / "r" / "last.pt")
    assert ck["settings"]["train"]["batch_size"] == 2  # a resumed run keeps the size that fits


def test_out_of_memory_even_at_batch_one_is_one_clear_sentence(small_text, capsys, monkeypatch, charnn_home):
    def train_loss(self, model, step):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(LMTask, "train_loss", train_loss)
    code = main(["train", str(small_text), *tiny_args("--steps", "4", "--batch-size", "2")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[-1] == ("charnn: Out of memory at --batch-size 1 --seq-len 32; try --seq-len 16 or a "
                                    "smaller --hidden.")


# -- disk full, read-only directory ------------------------------------------------------------


def deny_writes_under(monkeypatch, root: Path, err: int = errno.EACCES) -> None:
    """Make the OS refuse to create files under ``root``, as for a read-only directory.

    (chmod alone does not stop root, which CI containers often are.)
    """
    real_open, real_mkdir = os.open, os.mkdir

    def guarded_open(path, flags, *args, **kwargs):
        if flags & (os.O_CREAT | os.O_WRONLY | os.O_RDWR) and Path(path).resolve().is_relative_to(root.resolve()):
            raise OSError(err, os.strerror(err), str(path))
        return real_open(path, flags, *args, **kwargs)

    def guarded_mkdir(path, *args, **kwargs):
        if Path(path).resolve().is_relative_to(root.resolve()):
            raise OSError(err, os.strerror(err), str(path))
        return real_mkdir(path, *args, **kwargs)

    root.chmod(0o555)
    monkeypatch.setattr(os, "open", guarded_open)
    monkeypatch.setattr(os, "mkdir", guarded_mkdir)


def test_read_only_output_directory_is_refused_before_training(small_text, tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    deny_writes_under(monkeypatch, locked)
    code = main(["train", str(small_text), *tiny_args("--steps", "3"), "--out", str(locked / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.strip() == (f"charnn: Cannot write to the run directory {locked / 'run'}: it is read-only or not "
                           f"writable; pass --out with a writable place.")
    monkeypatch.undo()
    locked.chmod(0o755)
    assert list(locked.iterdir()) == []


@pytest.mark.parametrize("failure", ["read-only", "disk-full"])
def test_failed_save_mid_run_is_a_clear_sentence_and_the_previous_checkpoint_survives(failure, small_text,
                                                                                    tmp_path, capsys,
                                                                                    monkeypatch):
    run = tmp_path / "run"
    saves = []
    real_save = torch.save

    def save_that_fails_later(obj, f, *args, **kwargs):
        saves.append(1)
        if len(saves) > 2 and failure == "disk-full":  # the first evaluation's last.pt and best.pt succeed
            f.write(b"PK\x03\x04" + b"\0" * 1000)  # part of the file reached the disk, then it filled up
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if len(saves) > 2:
            deny_writes_under(monkeypatch, run, errno.EROFS)
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_that_fails_later)
    code = main(["train", str(small_text), *tiny_args("--steps", "8", "--eval-every", "3"), "--out", str(run)])
    err = capsys.readouterr().err
    monkeypatch.undo()
    run.chmod(0o755)
    why = "the disk is full" if failure == "disk-full" else "the directory is read-only or not writable"
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[-1] == (f"charnn: Could not save checkpoint to {run / 'last.pt'}: {why}; the previous "
                                    f"checkpoint there is kept.")
    assert load_checkpoint(run / "last.pt")["step"] == 3 and load_checkpoint(run / "best.pt")["step"] == 3
    assert _temporaries(run) == []
    last = json.loads((run / "events.jsonl").read_text().splitlines()[-1])  # what a re-attaching TUI reads
    assert last["event"] == "error" and why in last["message"]


def test_event_log_on_a_full_disk_is_one_sentence_not_a_traceback(small_text, capsys, monkeypatch):
    from charnn import report

    class FullDisk:
        def write(self, text):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def flush(self):
            pass

        def close(self):
            pass

    monkeypatch.setattr(report, "open", lambda *a, **k: FullDisk(), raising=False)
    code = main(["train", str(small_text), *tiny_args("--steps", "3")])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert err.splitlines()[-1].startswith("charnn: No space left on device")


def test_save_failure_is_a_charnn_error_for_the_tui_too(small_text, tmp_path, monkeypatch):
    """The TUI drives train_stream directly: the failure arrives as a CharnnError, not an OSError."""
    def full(obj, f, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    stream = train_stream(tiny_settings(small_text, steps=4, eval_every=2), out=str(tmp_path / "r"))
    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(CharnnError, match="the disk is full"):
        for event in stream:
            assert not isinstance(event, Checkpoint)
