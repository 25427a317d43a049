"""Small helpers shared by the benchmark scripts: corpus location, tables, JSON results."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAKESPEARE = Path(os.environ.get("CHARNN_TINYSHAKESPEARE", ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"))
RESULTS = ROOT / "benchmarks" / "results"


def machine() -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
            "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def table(rows: list[dict], columns: list[str]) -> str:
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(out)


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps({"benchmark": name, "when": stamp, "machine": machine(), **payload}, indent=2))
    return path


def train_events(settings, out: str) -> dict:
    """Run ``train_stream`` to the end; the last event of each kind by class name ("Start", "Step",
    "Done", ...), with the final evaluation under "FinalEval" and every periodic one, in order,
    under "evals"."""
    from charnn.training.events import Eval
    from charnn.training.trainer import train_stream

    last: dict = {"evals": []}
    for e in train_stream(settings, out=out):
        last["FinalEval" if isinstance(e, Eval) and e.final else type(e).__name__] = e
        if isinstance(e, Eval) and not e.final:
            last["evals"].append(e)
    return last
