"""Newcomer smoke test: does README.md get someone from a fresh clone to a working charnn?

    python benchmarks/newcomer_smoke.py [--readme README.md] [--tests] [--keep]

What it does, in a temporary directory that it removes afterwards (``--keep`` keeps it):

1. ``git clone`` this repository (committed HEAD only, as a newcomer gets it; ``--worktree``
   copies the working tree instead) and puts a link to ``../shared`` beside it when there is one,
   the layout CI uses;
2. makes a fresh virtual environment and, for speed, ``pip install torch==2.13.0`` into it
   (that wheel lies on local disk; ``--no-torch`` skips this and lets set-up pick torch);
3. runs the fenced ``sh`` block under README's ``## Set up`` heading as one bash script
   (``set -e``) in the clone, with the venv active. Lines that clone the repository or ``cd``
   into it are skipped (we are already in a fresh clone). If set-up makes its own ``.venv`` in the
   clone, the later commands use it;
4. with ``--tests``, runs the ``## Run the tests`` block the same way (minutes: off by default);
5. runs each command of the ``## Quick start`` block on its own, in a pseudo-terminal (so the TUI
   and the chat prompt see a terminal), with ``CHARNN_HOME`` in the temporary directory.

How each quick-start command is judged:

* Most commands must end by themselves within ``--timeout`` seconds (default 180) with exit
  status 0 and print something. Long training commands belong in README with their own budget
  (``--steps``, ``--time`` or ``--epochs``).
* These may be cut off, and the table says so (``PASS*``):
  - ``charnn train`` with no ``--steps``/``--time``/``--epochs``: once it has printed, it trains
    ``--train-cutoff`` more seconds (default 20), then gets Ctrl-C, and must save and exit 0
    within ``--stop-timeout`` seconds (default 120);
  - ``charnn chat``: once it has printed, it is sent ``--say`` (default "hello") and must answer
    with some new output, then gets Ctrl-D (end of input) and must exit 0;
  - ``charnn tui``: once it has drawn a screen, it gets Ctrl-Q after 3 s; if it is still open
    10 s later it is terminated (``PASS*`` when it had drawn).

Environment: inherited, except ``CHARNN_HOME`` (set in the temporary directory), ``CHARNN_CACHE``
and ``PYTHONPATH``/``PYTHONHOME`` (removed). ``CHARNN_TINYSHAKESPEARE`` is passed through when set,
as CI does; without it and offline, ``charnn train`` falls back to python-stdlib and says so.

Prints a pass/fail table, with the seconds to first output and in all; exits 1 if anything failed.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import os
import pty
import re
import select
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>NOM78c])")
BUDGET_FLAGS = ("--steps", "--time", "--epochs")
SHELLS = ("sh", "bash", "shell", "console")


@dataclass
class Result:
    stage: str
    command: str
    ok: bool
    cut_off: bool = False
    rc: int | None = None
    seconds: float = 0.0
    first_output_s: float | None = None
    note: str = ""
    output: str = field(default="", repr=False)


# -- README ----------------------------------------------------------------------------------


def parse_blocks(markdown: str) -> dict[str, list[str]]:
    """Level-2 heading -> list of shell code blocks under it; other code blocks are skipped."""
    blocks: dict[str, list[str]] = {}
    heading = ""
    fence: str | None = None
    keep: list[str] | None = None
    for line in markdown.splitlines():
        stripped = line.strip()
        if fence is not None:
            if stripped.startswith(fence) and stripped.strip("`~") == "":
                if keep is not None:
                    blocks.setdefault(heading, []).append("\n".join(keep))
                fence, keep = None, None
            elif keep is not None:
                keep.append(line)
            continue
        m = re.match(r"^(```+|~~~+)\s*([\w-]*)", stripped)
        if m:
            fence = m.group(1)
            keep = [] if m.group(2).lower() in SHELLS else None
            continue
        if line.startswith("## "):
            heading = line[3:].strip()
    return blocks


def block_under(blocks: dict[str, list[str]], title: str) -> str | None:
    """The first shell block under the heading whose text is ``title`` (case-insensitive)."""
    for heading, found in blocks.items():
        if heading.lower() == title.lower() and found:
            return found[0]
    return None


def commands_of(block: str) -> list[str]:
    """Shell commands in a block: continuation lines joined, comments, blanks and prompts dropped."""
    commands, pending = [], ""
    for raw in block.splitlines():
        line = raw.rstrip()
        if not pending and line.lstrip().startswith("$ "):
            line = line.lstrip()[2:]
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line and not line.startswith("#"):
            commands.append(line)
    if pending.strip():
        commands.append(pending.strip())
    return commands


def is_clone_step(command: str) -> bool:
    """`git clone ...` and `cd charnn` are what the script has already done."""
    words = shlex.split(command, comments=True) or [""]
    return words[0] == "git" and "clone" in words[:2] or (words[0] == "cd" and len(words) == 2
                                                             and "/" not in words[1].strip("/"))


def setup_script(block: str) -> str:
    kept = []
    for command in commands_of(block):
        parts = [p.strip() for p in command.split("&&")]
        parts = [p for p in parts if not is_clone_step(p)]
        if parts:
            kept.append(" && ".join(parts))
    return "set -e\n" + "\n".join(kept) + "\n"


# -- running ----------------------------------------------------------------------------------


def visible(text: str) -> str:
    return ANSI.sub("", text).replace("\r", "")


def classify(command: str) -> str:
    """'chat', 'tui', 'train-unbounded' or 'plain': how the command is driven and judged."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        return "plain"
    if len(words) >= 2 and Path(words[0]).name == "charnn":
        if words[1] == "chat":
            return "chat"
        if words[1] == "tui" or (words[1] == "train" and "--tui" in words):
            return "tui"
        if words[1] == "train" and not any(w.split("=")[0] in BUDGET_FLAGS for w in words):
            return "train-unbounded"
    return "plain"


class PtyProcess:
    """A shell command on a pseudo-terminal, as if typed into a fresh terminal."""

    def __init__(self, command: str, cwd: Path, env: dict[str, str]):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))

        def make_controlling_tty():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            # a terminal's Ctrl-C, even when this script was started with SIGINT ignored
            # (a background job of a non-interactive shell), which children would inherit
            signal.signal(signal.SIGINT, signal.SIG_DFL)

        self.start = time.monotonic()
        self.proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=env, stdin=slave, stdout=slave,
                                     stderr=slave, preexec_fn=make_controlling_tty, close_fds=True)
        os.close(slave)
        self.chunks: list[bytes] = []
        self.first_output: float | None = None
        self.closed = False

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", "replace")

    def pump(self, seconds: float) -> None:
        """Read whatever the command prints for up to ``seconds`` (less if it ends)."""
        deadline = time.monotonic() + seconds
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([self.master], [], [], min(left, 0.2))
            if not ready:
                if self.proc.poll() is not None:
                    self._drain()
                    return
                continue
            self._read()

    def _read(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            data = b""
        if not data:
            self.closed = True
            return
        self.chunks.append(data)
        if self.first_output is None and visible(data.decode("utf-8", "replace")).strip():
            self.first_output = time.monotonic() - self.start

    def _drain(self) -> None:
        while not self.closed and select.select([self.master], [], [], 0.05)[0]:
            self._read()

    def wait_for_output(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.first_output is None and self.proc.poll() is None and time.monotonic() < deadline:
            self.pump(0.2)
        self._drain()
        return self.first_output is not None

    def settle(self, quiet_s: float, timeout: float) -> None:
        """Read until nothing new has arrived for ``quiet_s`` (or ``timeout`` passes)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            before = len(self.chunks)
            self.pump(quiet_s)
            if len(self.chunks) == before:
                return

    def is_running(self) -> bool:
        if self.closed:  # the terminal closed: the command is ending, let it finish
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        return self.proc.poll() is None

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.pump(0.2)
        self._drain()
        return self.proc.poll()

    def stop(self) -> int:
        """End the command's process group (this script started it): TERM, then KILL."""
        for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            self.wait(grace)
        rc = self.proc.wait()
        os.close(self.master)
        return rc

    def elapsed(self) -> float:
        return time.monotonic() - self.start


def last_line(text: str) -> str:
    lines = [line.strip() for line in visible(text).splitlines() if line.strip()]
    return (lines[-1][:160] + ("…" if len(lines[-1]) > 160 else "")) if lines else ""


def run_quick_start(command: str, cwd: Path, env: dict[str, str], args) -> Result:
    kind = classify(command)
    p = PtyProcess(command, cwd, env)
    r = Result("quick start", command, ok=False)
    try:
        printed = p.wait_for_output(args.timeout)
        if printed and p.proc.poll() is None:
            # give the command time to show what it does (or to fail) before driving it
            if kind == "train-unbounded":
                p.pump(args.train_cutoff)
            elif kind == "chat":
                p.settle(1.5, 30)
            elif kind == "tui":
                p.pump(3)
        running = p.is_running()
        if not printed:
            r.note = f"printed nothing in {args.timeout:.0f} s" if running else f"printed nothing; exit {p.proc.poll()}"
        elif running and kind == "train-unbounded":
            p.send(b"\x03")  # Ctrl-C: the trainer should save and leave cleanly
            asked = time.monotonic()
            rc = p.wait(args.stop_timeout)
            r.cut_off, r.ok = True, rc == 0
            r.note = (f"Ctrl-C after {args.train_cutoff:.0f} s of training; exit {rc} "
                      f"{time.monotonic() - asked:.0f} s later" if rc is not None
                      else f"did not stop within {args.stop_timeout:.0f} s of Ctrl-C: {last_line(p.text)}")
        elif running and kind == "chat":
            before = len(visible(p.text))
            p.send(args.say.encode() + b"\n")
            p.settle(2.0, args.timeout)
            reply = visible(p.text)[before:].replace(args.say, "", 1)  # the terminal echoes what we typed
            p.send(b"\x04")  # Ctrl-D: end of input
            rc = p.wait(15)
            answered = bool(re.search(r"\w", reply))
            r.cut_off, r.ok = True, answered and rc == 0
            r.note = (f"said {args.say!r}, " + (f"it answered {last_line(reply)!r}" if answered else "no answer")
                      + (f"; exit {rc} after Ctrl-D" if rc is not None else "; still open 15 s after Ctrl-D")
                      + ("" if r.ok else f": {last_line(p.text)}"))
        elif running and kind == "tui":
            p.send(b"\x11")  # Ctrl-Q quits a Textual app
            rc = p.wait(10)
            r.cut_off, r.ok = True, rc in (0, None)
            r.note = "drew a screen, " + ("quit on Ctrl-Q" if rc == 0 else "terminated: still open 10 s after Ctrl-Q"
                                          if rc is None else f"exit {rc} after Ctrl-Q: {last_line(p.text)}")
        else:
            rc = p.wait(max(0.0, args.timeout - p.elapsed()))
            if rc is None:
                r.note = f"still running after {args.timeout:.0f} s"
            else:
                r.ok = rc == 0
                r.note = (f"{len(visible(p.text).strip())} characters of output" if rc == 0
                          else f"exit {rc}: {last_line(p.text)}")
    finally:
        rc = p.stop()
    r.rc = rc
    r.seconds = p.elapsed()
    r.first_output_s = p.first_output
    r.output = visible(p.text)
    return r


def run_script(stage: str, script: str, cwd: Path, env: dict[str, str], timeout: float, log: Path) -> Result:
    start = time.monotonic()
    shown = " && ".join(line for line in script.splitlines()[1:] if line.strip())
    r = Result(stage, shown, ok=False)
    with open(log, "wb") as out:
        try:
            proc = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=timeout)
            r.rc = proc.returncode
            r.ok = proc.returncode == 0
            r.note = "" if r.ok else f"exit {proc.returncode}; log: {log}"
        except subprocess.TimeoutExpired:
            r.note = f"still running after {timeout:.0f} s; log: {log}"
    r.seconds = time.monotonic() - start
    r.output = log.read_text(encoding="utf-8", errors="replace")
    return r


# -- set-up and report ----------------------------------------------------------------------------


def fresh_checkout(work: Path, worktree: bool) -> Path:
    dest = work / "charnn"
    if worktree:
        shutil.copytree(REPO, dest, symlinks=True, ignore=shutil.ignore_patterns(
            ".venv", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache", "build", "dist"))
    else:
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(dest)], check=True)
    shared = REPO.parent / "shared"
    if shared.is_dir():
        (work / "shared").symlink_to(shared)
    return dest


def venv_env(venv: Path, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV",
                                                             "CHARNN_CACHE")}
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["CHARNN_HOME"] = str(work / "charnn-home")
    env.setdefault("TERM", "xterm-256color")
    return env


def print_table(results: list[Result]) -> None:
    width = min(64, max(len(r.command) for r in results))
    print(f"\n{'stage':<12} {'command':<{width}} {'result':<6} {'first out':>9} {'total':>7}  note")
    for r in results:
        cmd = r.command if len(r.command) <= width else r.command[: width - 1] + "…"
        status = ("PASS*" if r.cut_off else "PASS") if r.ok else "FAIL"
        first = f"{r.first_output_s:.1f}s" if r.first_output_s is not None else "-"
        print(f"{r.stage:<12} {cmd:<{width}} {status:<6} {first:>9} {r.seconds:>6.1f}s  {r.note}")
    passed = sum(r.ok for r in results)
    print(f"\n{passed} passed, {len(results) - passed} failed  (PASS* = cut off on purpose; see the docstring)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readme", type=Path, default=None,
                    help="README to follow (default: the one in the fresh clone)")
    ap.add_argument("--worktree", action="store_true", help="copy the working tree instead of cloning HEAD")
    ap.add_argument("--tests", action="store_true", help="also run the '## Run the tests' block")
    ap.add_argument("--no-torch", action="store_true", help="do not pre-install torch==2.13.0 from local disk")
    ap.add_argument("--timeout", type=float, default=180, help="seconds a quick-start command may take")
    ap.add_argument("--setup-timeout", type=float, default=900, help="seconds set-up may take")
    ap.add_argument("--train-cutoff", type=float, default=20, help="seconds an unbounded `charnn train` runs")
    ap.add_argument("--stop-timeout", type=float, default=120,
                    help="seconds an unbounded `charnn train` may take to save and exit after Ctrl-C")
    ap.add_argument("--say", default="hello", help="what to say to `charnn chat`")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--show-output", action="store_true", help="print each command's output")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="charnn-newcomer-"))
    results: list[Result] = []
    try:
        print(f"working in {work}", flush=True)
        clone = fresh_checkout(work, args.worktree)
        readme = (args.readme or clone / "README.md").resolve()
        if not readme.is_file():
            print(f"no README at {readme}", file=sys.stderr)
            return 1
        blocks = parse_blocks(readme.read_text(encoding="utf-8"))
        setup = block_under(blocks, "Set up")
        quick = block_under(blocks, "Quick start")
        missing = [h for h, b in (("## Set up", setup), ("## Quick start", quick)) if not b]
        if missing:
            print(f"{readme} has no ```sh block under {' or '.join(missing)}", file=sys.stderr)
            return 1

        venv = work / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        env = venv_env(venv, work)
        if not args.no_torch:
            print("pre-installing torch==2.13.0 from local disk ...", flush=True)
            results.append(run_script("pre-install", "set -e\npip install --quiet torch==2.13.0\n", clone, env,
                                      args.setup_timeout, work / "torch.log"))
        print("running README's set-up block ...", flush=True)
        results.append(run_script("set up", setup_script(setup), clone, env, args.setup_timeout,
                                  work / "setup.log"))
        set_up = results[-1]
        if (clone / ".venv" / "bin" / "python").exists():  # set-up made its own environment: use it
            env = venv_env(clone / ".venv", work)
        if args.tests:
            tests = block_under(blocks, "Run the tests")
            if tests:
                print("running README's test block ...", flush=True)
                results.append(run_script("tests", setup_script(tests), clone, env, args.setup_timeout,
                                          work / "tests.log"))
            else:
                results.append(Result("tests", "(no ```sh block under ## Run the tests)", ok=False))
        if set_up.ok:
            for command in commands_of(quick):
                print(f"$ {command}", flush=True)
                r = run_quick_start(command, clone, env, args)
                results.append(r)
                if args.show_output:
                    print(r.output[-3000:])
        else:
            print(set_up.output[-3000:])
        print_table(results)
        return 0 if results and all(r.ok for r in results) else 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
