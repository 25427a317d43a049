"""A training run in a child process, seen through its stream of JSON-line events.

The TUI never trains in its own process (the GIL would starve the UI): it runs
``python -m charnn train ... --jsonl`` in a new session, with stdout going to a
file rather than a pipe, so the child survives the TUI quitting ("keep training
in the background") and never dies of a broken pipe. The TUI follows that file,
or a run's ``events.jsonl`` when it re-attaches to a run it did not start.

Nothing here imports textual; the screens poll ``EventFile.read_new`` and call
the signal methods.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from charnn.errors import CharnnError
from charnn.training.events import Event, from_json

PROCESS_FILE = "trainer.json"  # written into a run directory by the TUI that started it


class EventFile:
    """Follows a JSON-lines event file as it grows; partial last lines wait for their end."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._file = None
        self._rest = b""

    def read_new(self) -> list[Event]:
        if self._file is None:
            try:
                self._file = open(self.path, "rb")  # noqa: SIM115 - kept open while following
            except FileNotFoundError:
                return []
        data = self._file.read()
        if not data:
            return []
        lines = (self._rest + data).split(b"\n")
        self._rest = lines.pop()
        events = []
        for line in lines:
            if not line.strip():
                continue
            try:
                events.append(from_json(line.decode("utf-8", "replace")))
            except (ValueError, KeyError, TypeError):
                continue  # a line that is not an event (a stray print) is not worth a crash
        return events

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _looks_like_trainer(pid: int) -> bool:
    """On Linux, check the pid still runs ``charnn train`` (pids get reused)."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():
        return _alive(pid)
    try:
        args = cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    return b"charnn" in args and b"train" in args


class TrainingProcess:
    """A training run: started here (``start``) or found on disk (``attach``)."""

    def __init__(self, events_path: Path, pid: int | None, popen: subprocess.Popen | None = None,
                 stderr_path: Path | None = None, run_dir: Path | None = None):
        self.events = EventFile(events_path)
        self.events_path = events_path
        self.pid = pid
        self.popen = popen
        self.stderr_path = stderr_path
        self.run_dir = run_dir
        self.paused = False
        self.stopping = False
        self.finished = False  # a Done or Error event was seen

    # -- creation ---------------------------------------------------------------------
    @classmethod
    def start(cls, train_args: list[str], env: dict[str, str] | None = None) -> TrainingProcess:
        """Run ``charnn train TRAIN_ARGS --jsonl`` in its own session, output to temp files."""
        fd, out = tempfile.mkstemp(prefix="charnn-train-", suffix=".jsonl")
        os.close(fd)
        err = out[: -len(".jsonl")] + ".stderr"
        args = [a for a in train_args if a not in ("--tui", "--jsonl", "-q", "--quiet")]
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            popen = subprocess.Popen(
                [sys.executable, "-m", "charnn", "train", *args, "--jsonl"],
                stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                start_new_session=True, env={**os.environ, **(env or {})},
            )
        return cls(Path(out), popen.pid, popen, Path(err))

    @classmethod
    def attach(cls, spec: str) -> TrainingProcess:
        """Follow a run on disk by name or directory; control it too if its trainer still runs."""
        from charnn import paths

        p = Path(spec).expanduser()
        run_dir = p if p.is_dir() else paths.runs_dir() / spec
        if not (run_dir / "events.jsonl").is_file():
            if run_dir.is_dir():
                raise CharnnError(f"Run {run_dir} has no events.jsonl to follow.")
            raise CharnnError(f"No run named {spec!r} (looked for a directory and under {paths.runs_dir()}).")
        pid = None
        try:
            info = json.loads((run_dir / PROCESS_FILE).read_text())
            if isinstance(info.get("pid"), int) and _looks_like_trainer(info["pid"]):
                pid = info["pid"]
        except (OSError, ValueError, AttributeError):
            pass
        return cls(run_dir / "events.jsonl", pid, run_dir=run_dir)

    # -- state ------------------------------------------------------------------------
    @property
    def controllable(self) -> bool:
        return self.pid is not None and self.alive()

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return self.pid is not None and _alive(self.pid)

    def exit_code(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None

    def stderr_tail(self, lines: int = 3) -> str:
        """The child's last words on stderr (argument errors arrive only there)."""
        if self.stderr_path is None:
            return ""
        try:
            text = self.stderr_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        kept = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        return "\n".join(kept[-lines:])

    def note_started(self, run_dir: str) -> None:
        """Record the trainer's pid in its run dir, so ``charnn tui --run`` can control it later."""
        self.run_dir = Path(run_dir)
        if self.popen is None:
            return
        try:
            (self.run_dir / PROCESS_FILE).write_text(json.dumps({
                "pid": self.pid, "events": str(self.events_path), "started": time.time(),
            }))
        except OSError:
            pass

    def note_finished(self) -> None:
        self.finished = True
        self.paused = False
        if self.run_dir is not None and self.popen is not None:
            try:
                (self.run_dir / PROCESS_FILE).unlink()
            except OSError:
                pass

    # -- control ----------------------------------------------------------------------
    def _signal(self, sig: int) -> bool:
        if not self.controllable:
            return False
        try:
            os.kill(self.pid, sig)  # type: ignore[arg-type]
        except ProcessLookupError:
            return False
        return True

    def pause(self) -> bool:
        if not self.paused and self._signal(signal.SIGSTOP):
            self.paused = True
            return True
        return False

    def resume(self) -> bool:
        if self.paused and self._signal(signal.SIGCONT):
            self.paused = False
            return True
        return False

    def stop(self) -> bool:
        """Ask the trainer to stop after this step; it saves a resumable checkpoint and emits Done."""
        if self.paused:
            self.resume()
        ok = self._signal(signal.SIGINT)
        self.stopping = self.stopping or ok
        return ok

    def detach(self) -> None:
        """Leave the trainer running on its own (it was started in its own session)."""
        if self.paused:
            self.resume()
        self.events.close()

    def cleanup(self) -> None:
        """Remove the temporary output files once the run has finished and been read."""
        self.events.close()
        if self.popen is None:
            return
        if self.popen.poll() is None:
            return
        for path in (self.events_path, self.stderr_path):
            try:
                if path is not None:
                    path.unlink()
            except OSError:
                pass
