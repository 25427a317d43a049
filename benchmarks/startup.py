"""Start-up: wall time of `charnn --help` (must not import torch) against `python -c pass`
and `python -c "import torch"`, best of N runs each.

    python benchmarks/startup.py
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import save, table  # noqa: E402


def best_of(cmd: list[str], n: int = 7) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    py = sys.executable
    rows = [
        {"command": "python -c pass", "seconds": best_of([py, "-c", "pass"])},
        {"command": "charnn --help", "seconds": best_of([py, "-m", "charnn", "--help"])},
        {"command": "charnn train --help", "seconds": best_of([py, "-m", "charnn", "train", "--help"])},
        {"command": "python -c 'import torch'", "seconds": best_of([py, "-c", "import torch"], 3)},
    ]
    for r in rows:
        r["seconds"] = round(r["seconds"], 3)
    print(table(rows, ["command", "seconds"]))
    print(f"charnn --help: {rows[1]['seconds']:.3f} s (target < 0.3 s)")
    print(f"results: {save('startup', {'rows': rows})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
