"""The whole benchmark suite, one command: each benchmark in its own process, in turn.

    python benchmarks/run_all.py                 # CPU suite (about 20 minutes on 2 cores)
    python benchmarks/run_all.py --device cuda   # GPU budgets (3 and 10 minutes) and sizes
    python benchmarks/run_all.py --quick         # smaller budgets and corpora, to check it runs

Each benchmark prints its own table and writes its JSON to benchmarks/results/; this
script adds a last table of what ran, how long it took and whether it finished. Run it
on a quiet machine: the figures are wall-clock rates.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import table  # noqa: E402

HERE = Path(__file__).resolve().parent


def plan(device: str, quick: bool) -> list[tuple[str, list[str]]]:
    gpu = device != "cpu"
    budgets = ["20"] if quick else (["180", "600"] if gpu else ["90", "300"])
    sizes = ["--sizes", "3x1024", "--batches", "128x128"] if gpu else []
    return [
        ("start-up", ["startup.py"]),
        ("generation", ["generation.py", "--device", device] + (["--length", "500"] if quick else [])),
        # quick: one shape, and enough steps to span several 0.25 s Step events (5 steps did not)
        ("throughput", ["throughput.py", "--device", device]
         + (["--sizes", "1x256", "--batches", "32x64", "--steps", "40", "--repeats", "1"] if quick else sizes)),
        ("time to quality", ["time_to_quality.py", "--device", device, "--budgets", *budgets]),
        ("big corpus", ["big_corpus.py", "--size", "10M" if quick else "100M", "--tokenizers", "char,bpe"]),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--quick", action="store_true", help="small budgets: checks the suite runs, not the figures")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these (e.g. generation throughput)")
    args = ap.parse_args()
    rows = []
    for name, argv in plan(args.device, args.quick):
        if args.only and not any(o in name.replace(" ", "-") or o in argv[0] for o in args.only):
            continue
        print(f"\n=== {name}: python benchmarks/{' '.join(argv)}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(HERE / argv[0]), *argv[1:]])
        rows.append({"benchmark": name, "exit": rc, "minutes": f"{(time.perf_counter() - t0) / 60:.1f}"})
    print("\n" + table(rows, ["benchmark", "exit", "minutes"]))
    return 0 if all(r["exit"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
