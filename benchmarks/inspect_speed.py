"""Inspection speed: seconds to inspect N characters (surprise + every unit's activations and gates
+ the unit finder) on the CPU with the built-in model, beside `charnn eval` scoring the same text,
each read as one stream (the baseline: the reading before parallel streams) and as parallel
streams (the reading both use now, `charnn.scoring.streams.parallel_reading`). Prints wall and CPU
seconds and the load average (on a shared machine compare the CPU seconds' ratio), the bits/char
of both readings and their difference, and the finder's table.

    python benchmarks/inspect_speed.py [--chars 100000] [--checkpoint PATH] [--streams 32]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SHAKESPEARE, save, table  # noqa: E402


def _timed(fn):
    """``(result, wall seconds, CPU seconds of this process, mean load average)``: on a shared
    machine the wall time is mostly waiting for a core, the CPU time is the work."""
    load, cpu, t0 = os.getloadavg()[0], time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - cpu, (load + os.getloadavg()[0]) / 2


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chars", type=int, default=100_000)
    ap.add_argument("--checkpoint", default=None, help="default: the latest LM, else the built-in one")
    ap.add_argument("--streams", type=int, default=None, help="parallel streams (default: the reading's own)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the one-stream rows")
    args = ap.parse_args()

    import torch

    from charnn.inspect.session import inspect_text, load_for_inspection
    from charnn.runtime.device import set_cpu_threads
    from charnn.scoring.streams import STREAMS, score_text

    streams = args.streams or STREAMS
    threads = set_cpu_threads()
    text = SHAKESPEARE.read_text(encoding="utf-8")
    text = text[len(text) - len(text) // 10 :][: args.chars]  # held out: the last 10%
    loaded = load_for_inspection(args.checkpoint, "cpu")
    ids, lengths = loaded.tokenizer.encode_array(text), loaded.tokenizer.char_lengths()
    readings = ([("one stream (before)", 1)] if not args.no_baseline else []) + [(f"{streams} streams (now)", streams)]
    rows, seconds, result = [], {}, None
    for label, s in readings:
        ev, ev_s, ev_cpu, ev_load = _timed(
            lambda s=s: score_text(loaded.model, ids, lengths, torch.device("cpu"), streams=s))
        result, in_s, in_cpu, in_load = _timed(lambda s=s: inspect_text(loaded, text, find=True, streams=s))
        seconds[s] = (ev_cpu, in_cpu)
        rows.append({"path": f"charnn eval, {label}", "seconds": f"{ev_s:.1f}", "CPU s": f"{ev_cpu:.1f}",
                     "load": f"{ev_load:.1f}", "bits/char": f"{ev.bits_per_char:.6f}", "_bpc": ev.bits_per_char,
                     "_cpu": ev_cpu})
        rows.append({"path": f"inspect (surprise + activations + finder), {label}", "seconds": f"{in_s:.1f}",
                     "CPU s": f"{in_cpu:.1f}", "load": f"{in_load:.1f}", "bits/char": f"{result.bits_per_char:.6f}",
                     "_bpc": result.bits_per_char, "_cpu": in_cpu})
    if 1 in seconds:  # the ratio of CPU seconds: what the load average does not change
        for row, base in zip(rows, [seconds[1][0], seconds[1][1]] * 2, strict=True):
            row["x less CPU"] = f"{base / max(row['_cpu'], 1e-9):.1f}"
    cfg = loaded.model.config
    print(f"{len(text):,} characters of held-out tiny-shakespeare, {cfg.layers}x{cfg.hidden} {cfg.cell} "
          f"({loaded.path}), CPU, {threads} thread(s), {os.cpu_count()} cores")
    print(table(rows, ["path", "seconds", "CPU s", "load", "x less CPU", "bits/char"]))
    if len(rows) == 4:
        print(f"parallel streams minus one stream: {rows[2]['_bpc'] - rows[0]['_bpc']:+.2e} bits/char (eval); "
              f"inspect minus eval: {rows[3]['_bpc'] - rows[2]['_bpc']:+.2e}")
    matches = [{"probe": m.probe, "unit": f"{m.layer}:{m.unit}", "signal": m.signal, "r": f"{m.r:.3f}"}
               for m in result.findings.matches]
    print(table(matches, ["probe", "unit", "signal", "r"]))
    for g in result.findings.saturation:
        print(f"layer {g.layer} gate {g.gate}: {g.left:.1%} below 0.1, {g.right:.1%} above 0.9")
    for row in rows:
        del row["_bpc"], row["_cpu"]
    print(f"saved {save('inspect_speed', {'chars': len(text), 'rows': rows, 'finder': matches})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
