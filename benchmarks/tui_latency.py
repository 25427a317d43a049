"""How responsive the TUI stays while a real training run works beside it.

Not a test: it prints figures. The app runs (headless by default, or on this
terminal with --tty) with a real ``charnn train`` child using every core, and
two probes measure the UI's event loop:

* tick lateness: a 20 ms ``set_interval`` timer; lateness = gap between
  callbacks minus 20 ms (what an animation or a redraw would suffer);
* queue delay: time from ``call_later`` to the callback running (what a key
  press waits before its handler starts).

Phases: idle (no training), Train screen while training (chart, numbers and
samples updating), and Generate while training (a thread streaming text).
The target is p99 tick lateness under 50 ms.

    python benchmarks/tui_latency.py [--seconds 20] [--corpus FILE] [--tty]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
TICK_S = 0.020


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


class Probe:
    """Collects tick gaps and queue delays from inside the app's event loop."""

    def __init__(self, app):
        self.app = app
        self.ticks: list[float] = []
        self.queue: list[float] = []
        self._last = None
        self._timer = None
        self._running = False

    def start(self) -> None:
        self.ticks, self.queue, self._last = [], [], None
        self._running = True
        self._timer = self.app.set_interval(TICK_S, self._tick)

    def stop(self) -> None:
        self._running = False
        if self._timer is not None:
            self._timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.ticks.append(max(0.0, now - self._last - TICK_S))
        self._last = now
        posted = time.perf_counter()
        self.app.call_later(lambda: self.queue.append(time.perf_counter() - posted))


def report(name: str, probe: Probe, extra: str = "") -> dict:
    ticks = [t * 1000 for t in probe.ticks]
    queue = [q * 1000 for q in probe.queue]
    row = {
        "phase": name, "ticks": len(ticks),
        "p50": percentile(ticks, 50), "p90": percentile(ticks, 90), "p99": percentile(ticks, 99),
        "max": max(ticks) if ticks else float("nan"),
        "q50": percentile(queue, 50), "q99": percentile(queue, 99),
    }
    print(f"{name:<28} {row['ticks']:>6} ticks | tick lateness ms: p50 {row['p50']:6.2f}  p90 {row['p90']:6.2f}  "
          f"p99 {row['p99']:6.2f}  max {row['max']:7.2f} | queue delay ms: p50 {row['q50']:5.2f}  "
          f"p99 {row['q99']:6.2f}  {extra}", flush=True)
    return row


async def drive(pilot, args, results: list[dict]) -> None:
    app = pilot.app
    probe = Probe(app)
    train = app.train_screen

    probe.start()
    await asyncio.sleep(args.seconds / 2)
    probe.stop()
    results.append(report("idle (no training)", probe))

    train.query_one("#corpus").value = str(args.corpus)
    train.query_one("#time").value = f"{args.seconds * 3 + 60:.0f}s"
    train.query_one("#extra").value = args.extra
    train.start_from_form()
    t0 = time.perf_counter()
    while train.state.step < 1 and time.perf_counter() - t0 < 180:
        await asyncio.sleep(0.2)
    if train.state.step < 1:
        raise SystemExit(f"training did not start: {train.state} {[n.message for n in app._notifications]}")

    probe.start()
    await asyncio.sleep(args.seconds)
    probe.stop()
    results.append(report("Train screen, training", probe,
                          f"| trainer {train.state.tokens_per_s:,.0f} tok/s, step {train.state.step}"))

    t0 = time.perf_counter()
    while not train.state.last_checkpoint and time.perf_counter() - t0 < 120:
        await asyncio.sleep(0.2)
    await pilot.press("f2")
    gen = app.screen
    gen.settings.length = 100_000
    gen.open_model(str(Path(train.state.run_dir) / "last.pt"))
    t0 = time.perf_counter()
    while gen.loaded is None and time.perf_counter() - t0 < 60:
        await asyncio.sleep(0.1)
    await pilot.press("g")
    probe.start()
    await asyncio.sleep(args.seconds)
    probe.stop()
    chars = len(gen.query_one("#out-a").text)
    results.append(report("Generate while training", probe,
                          f"| {chars / args.seconds:,.0f} chars/s streamed, trainer step {train.state.step}"))
    gen.action_stop_generating()

    await pilot.press("f1")
    train.action_stop()
    t0 = time.perf_counter()
    while train.state.active and time.perf_counter() - t0 < 180:
        await asyncio.sleep(0.2)

    await pilot.press("f2", "g")
    probe.start()
    await asyncio.sleep(args.seconds / 2)
    probe.stop()
    chars = len(gen.query_one("#out-a").text)
    results.append(report("Generate, no training", probe, f"| {chars / (args.seconds / 2):,.0f} chars/s streamed"))
    gen.action_stop_generating()
    app.exit()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="length of each measured phase")
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    p.add_argument("--extra", default="", help="extra `charnn train` flags (default: the form's small 2x128)")
    p.add_argument("--tty", action="store_true", help="draw on this terminal instead of headless")
    args = p.parse_args()
    if not args.corpus.is_file():
        raise SystemExit(f"no corpus at {args.corpus}; pass --corpus FILE")
    os.environ.setdefault("CHARNN_HOME", tempfile.mkdtemp(prefix="charnn-tui-bench-"))

    from charnn.tui.app import CharnnApp

    print(f"charnn TUI latency: {os.cpu_count()} CPUs, tick {TICK_S * 1000:.0f} ms, "
          f"{args.seconds:g} s per phase, {'terminal' if args.tty else 'headless'}, corpus {args.corpus.name}",
          flush=True)
    results: list[dict] = []
    app = CharnnApp()

    async def auto_pilot(pilot):
        try:
            await drive(pilot, args, results)
        except BaseException:
            train = app.train_screen
            if train is not None and train.process is not None and train.process.alive():
                train.process.stop()
            app.exit()
            raise

    if args.tty:
        app.run(auto_pilot=auto_pilot)
    else:
        async def headless():
            async with app.run_test(size=(120, 40)) as pilot:
                await auto_pilot(pilot)

        asyncio.run(headless())
    for line in results:
        print(f"{line['phase']}: p50 {line['p50']:.2f} ms, p99 {line['p99']:.2f} ms")
    worst = max((r["p99"] for r in results), default=float("nan"))
    print(f"worst p99 tick lateness {worst:.1f} ms (target < 50 ms): {'OK' if worst < 50 else 'OVER'}")
    if results:
        print(f"median of p50s {statistics.median(r['p50'] for r in results):.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
