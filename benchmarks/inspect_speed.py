"""Inspection speed: seconds to inspect N characters (surprise + every unit's activations and gates
+ the unit finder) on the CPU with the built-in model, beside `charnn eval` scoring the same text.
Also prints the finder's table and checks that the two bits/char figures agree.

    python benchmarks/inspect_speed.py [--chars 100000] [--checkpoint PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SHAKESPEARE, save, table  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chars", type=int, default=100_000)
    ap.add_argument("--checkpoint", default=None, help="default: the latest LM, else the built-in one")
    args = ap.parse_args()

    from charnn.inspect.session import inspect_text, load_for_inspection
    from charnn.runtime.device import set_cpu_threads
    from charnn.scoring.evaluate import evaluate_lm_file

    set_cpu_threads()
    text = SHAKESPEARE.read_text(encoding="utf-8")
    text = text[len(text) - len(text) // 10 :][: args.chars]  # held out: the last 10%
    loaded = load_for_inspection(args.checkpoint, "cpu")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write(text)
    t0 = time.perf_counter()
    ev = evaluate_lm_file(loaded.path, f.name, device="cpu")
    eval_s = time.perf_counter() - t0
    Path(f.name).unlink()
    t0 = time.perf_counter()
    result = inspect_text(loaded, text, find=True)
    inspect_s = time.perf_counter() - t0
    rows = [{"path": "charnn eval (baseline)", "seconds": f"{eval_s:.1f}", "bits/char": f"{ev['bits_per_char']:.5f}"},
            {"path": "inspect: surprise + activations + finder", "seconds": f"{inspect_s:.1f}",
             "bits/char": f"{result.bits_per_char:.5f}"}]
    cfg = loaded.model.config
    print(f"{len(text):,} characters, {cfg.layers}x{cfg.hidden} {cfg.cell} ({loaded.path}), CPU")
    print(table(rows, ["path", "seconds", "bits/char"]))
    matches = [{"probe": m.probe, "unit": f"{m.layer}:{m.unit}", "signal": m.signal, "r": f"{m.r:.3f}"}
               for m in result.findings.matches]
    print(table(matches, ["probe", "unit", "signal", "r"]))
    for g in result.findings.saturation:
        print(f"layer {g.layer} gate {g.gate}: {g.left:.1%} below 0.1, {g.right:.1%} above 0.9")
    print(f"saved {save('inspect_speed', {'chars': len(text), 'rows': rows, 'finder': matches})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
