"""Soak: continuous training with the TUI attached; does anything grow over time?

Starts the real TUI headless (``App.run_test``), which starts ``charnn train`` in a
child process and follows its event stream, exactly as a user's ``charnn tui``
would. Every ``--every`` seconds it records the resident memory (VmRSS) of the
trainer and of the TUI process, and at the end prints the series, the start
(after warm-up: the first evaluation) and end values, and the growth per hour.

    python benchmarks/soak.py                       # 30 minutes
    python benchmarks/soak.py --minutes 5
    python benchmarks/soak.py --no-tui              # follow the JSON lines without the TUI
    python benchmarks/soak.py --replay 600          # 600 evaluation cycles of canned events, fast

``--replay`` feeds made-up events (steps, an evaluation, a 200-character sample and a
checkpoint per cycle) straight into the Train screen, so what hours of training would
show happens in minutes: the TUI's memory must level off once its bounded buffers (the
sample log keeps the newest 200 samples, each loss series a fixed number of points) are full.

The model is small on purpose (many steps, evaluations, samples and checkpoints
per minute) so that anything kept per step or per event would show.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SHAKESPEARE, save, table  # noqa: E402

TRAIN_ARGS = ["--layers", "2", "--hidden", "128", "--batch-size", "32", "--seq-len", "64", "--threads", "1",
              "--eval-every", "100", "--sample-length", "200"]


def rss(pid: int | None = None) -> int | None:
    try:
        for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class Recorder:
    def __init__(self, every: float):
        self.every = every
        self.rows: list[dict] = []
        self.t0 = time.monotonic()
        self.first_eval_t: float | None = None

    def record(self, trainer_pid: int | None, step: int, events: int) -> None:
        row = {"t_s": round(time.monotonic() - self.t0, 1), "step": step, "events_or_samples": events,
               "trainer_rss": rss(trainer_pid) if trainer_pid else None, "viewer_rss": rss()}
        self.rows.append(row)
        mib = lambda v: f"{v / 2**20:7.1f}" if v else "      -"  # noqa: E731
        print(f"  t={row['t_s']:7.1f}s step={step:>7} trainer {mib(row['trainer_rss'])} MiB  "
              f"viewer {mib(row['viewer_rss'])} MiB", flush=True)


async def soak_with_tui(train_args: list[str], seconds: float, rec: Recorder) -> str:
    from charnn.tui.app import CharnnApp

    app = CharnnApp(train_args=train_args)
    async with app.run_test(size=(140, 45)) as pilot:
        screen = app.train_screen
        next_t = 0.0
        while True:
            await pilot.pause(0.5)
            proc, state = screen.process, screen.state
            now = time.monotonic() - rec.t0
            if state.val_bpc is not None and rec.first_eval_t is None:
                rec.first_eval_t = now
            if now >= next_t:
                rec.record(proc.pid if proc else None, state.step, state.samples)
                next_t += rec.every
            if proc is not None and not proc.alive() and not state.active:
                break
            if now > seconds + 300:
                break
        rec.record(None, state.step, state.samples)
        reason = state.done_reason or state.status
        app.exit(0)
    return f"TUI (headless, App.run_test) · run ended: {reason}"


async def replay_into_tui(cycles: int, steps_per_cycle: int = 100) -> list[dict]:
    import random

    from charnn.training.events import Checkpoint, Eval, Sample, Start, Step
    from charnn.tui.app import CharnnApp
    from charnn.tui.widgets.sample_log import MAX_SAMPLES

    rng = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyz      \n"
    rows = []
    app = CharnnApp()
    async with app.run_test(size=(140, 45)) as pilot:
        screen = app.train_screen
        screen.show_events([Start(run_dir="/tmp/replay", run_name="replay", mode="lm", device="cpu", parameters=1,
                                  train_tokens=1, val_tokens=1, vocab_size=65, tokenizer="char", budget="replay",
                                  settings={})])
        step = 0
        for cycle in range(1, cycles + 1):
            for _ in range(steps_per_cycle):
                step += 1
                bpc = 2 + 2 / (1 + step / 1000) + rng.random() * 0.1
                screen.apply_event(Step(step=step, epoch=step / 500, loss=bpc * 0.69, bpc=bpc, lr=1e-3,
                                        tokens_per_s=20000.0, elapsed_s=step / 10, eta_s=100.0, progress=0.5,
                                        tokens=step * 2048))
            val = 2.1 + 2 / (1 + step / 1000)
            screen.apply_event(Eval(step=step, val_loss=val * 0.69, val_bpc=val, best_val_bpc=val, improved=True))
            screen.apply_event(Sample(step=step, text="".join(rng.choice(letters) for _ in range(200)), val_bpc=val))
            screen.apply_event(Checkpoint(step=step, path="/tmp/replay/best.pt", kind="best"))
            await pilot.pause()
            if cycle % 50 == 0 or cycle == 1:
                row = {"cycle": cycle, "samples": min(cycle, MAX_SAMPLES), "steps": step, "viewer_rss": rss()}
                rows.append(row)
                print(f"  cycle {cycle:5d}  steps {step:7d}  viewer {row['viewer_rss'] / 2**20:6.1f} MiB", flush=True)
        app.exit(0)
    return rows


def soak_with_jsonl(train_args: list[str], seconds: float, rec: Recorder) -> str:
    from charnn.training.events import Eval, Step
    from charnn.tui.training_process import EventFile

    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as out:
        path = out.name
    with open(path, "wb") as stdout:
        proc = subprocess.Popen([sys.executable, "-m", "charnn", "train", *train_args, "--jsonl"],
                                stdout=stdout, stderr=subprocess.DEVNULL)
    follow = EventFile(path)
    step = events = 0
    next_t = 0.0
    while proc.poll() is None:
        time.sleep(0.1)
        for e in follow.read_new():
            events += 1
            if isinstance(e, Step):
                step = e.step
            elif isinstance(e, Eval) and rec.first_eval_t is None:
                rec.first_eval_t = time.monotonic() - rec.t0
        if time.monotonic() - rec.t0 >= next_t:
            rec.record(proc.pid, step, events)
            next_t += rec.every
    follow.close()
    os.unlink(path)
    return "JSON-lines follower (no TUI)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--every", type=float, default=30.0, help="seconds between memory readings")
    ap.add_argument("--corpus", default=str(SHAKESPEARE))
    ap.add_argument("--no-tui", action="store_true", help="follow the JSON lines instead of running the TUI")
    ap.add_argument("--replay", type=int, metavar="CYCLES", help="feed canned events into the TUI instead")
    args = ap.parse_args()
    if args.replay:
        rows = asyncio.run(replay_into_tui(args.replay))
        full = [r for r in rows if r["cycle"] >= 250] or rows  # sample log full from cycle 200
        growth = full[-1]["viewer_rss"] - full[0]["viewer_rss"]
        print(f"viewer RSS: {rows[0]['viewer_rss'] / 2**20:.1f} MiB at cycle 1, {full[0]['viewer_rss'] / 2**20:.1f} MiB "
              f"at cycle {full[0]['cycle']}, {full[-1]['viewer_rss'] / 2**20:.1f} MiB at cycle {full[-1]['cycle']} "
              f"({growth / 2**20:+.1f} MiB once the sample log is full)")
        print(f"results: {save('soak_replay', {'cycles': args.replay, 'series': rows})}")
        return

    home = Path(tempfile.mkdtemp(prefix="charnn-soak-"))
    os.environ["CHARNN_HOME"] = str(home)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    seconds = args.minutes * 60
    train_args = [args.corpus, *TRAIN_ARGS, "--time", f"{seconds:g}", "--name", "soak"]
    rec = Recorder(args.every)
    print(f"soak: {args.minutes:g} min of `charnn train {' '.join(train_args)}`", flush=True)
    if args.no_tui:
        how = soak_with_jsonl(train_args, seconds, rec)
    else:
        how = asyncio.run(soak_with_tui(train_args, seconds, rec))

    # start = the first reading after warm-up (the first evaluation, or a tenth of the run if sooner)
    trainer = [r for r in rec.rows if r["trainer_rss"]]
    warm_t = min(rec.first_eval_t or seconds, max(30.0, seconds / 10))
    warm = [r for r in trainer if r["t_s"] >= warm_t] or trainer
    first, last = warm[0], warm[-1]
    viewer_first = next(r for r in rec.rows if r["t_s"] >= first["t_s"])["viewer_rss"]
    viewer_last = rec.rows[-1]["viewer_rss"]
    hours = max((last["t_s"] - first["t_s"]) / 3600, 1e-9)
    mib = lambda v: f"{v / 2**20:.1f} MiB"  # noqa: E731
    summary = {
        "attached": how, "minutes": args.minutes, "steps": rec.rows[-1]["step"],
        "warm_up_s": first["t_s"], "trainer_rss_first_reading": trainer[0]["trainer_rss"],
        "trainer_rss_start": first["trainer_rss"], "trainer_rss_end": last["trainer_rss"],
        "trainer_rss_max": max(r["trainer_rss"] for r in trainer),
        "trainer_growth_per_hour": (last["trainer_rss"] - first["trainer_rss"]) / hours,
        "viewer_rss_start": viewer_first, "viewer_rss_end": viewer_last,
        "viewer_growth_per_hour": (viewer_last - viewer_first) / hours,
    }
    print()
    print(table([{"t (s)": r["t_s"], "step": r["step"], "trainer RSS": mib(r["trainer_rss"]) if r["trainer_rss"] else "-",
                  "viewer RSS": mib(r["viewer_rss"])} for r in rec.rows],
                ["t (s)", "step", "trainer RSS", "viewer RSS"]))
    print(f"\n{how}; {summary['steps']} steps in {args.minutes:g} min")
    print(f"trainer RSS after warm-up (t={first['t_s']:.0f}s): {mib(first['trainer_rss'])} -> end "
          f"{mib(last['trainer_rss'])} (max {mib(summary['trainer_rss_max'])}; "
          f"{summary['trainer_growth_per_hour'] / 2**20:+.1f} MiB/h)")
    print(f"viewer RSS: {mib(viewer_first)} -> {mib(viewer_last)} "
          f"({summary['viewer_growth_per_hour'] / 2**20:+.1f} MiB/h)")
    path = save("soak", {"summary": summary, "series": rec.rows, "train_args": train_args})
    print(f"results: {path}")


if __name__ == "__main__":
    main()
