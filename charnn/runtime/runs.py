"""The run store: where runs and the built-in models are, what each one is, and which file to open."""

from __future__ import annotations

import json
from pathlib import Path

from charnn import paths
from charnn.errors import CharnnError
from charnn.runtime.checkpoint import summary_path


def _run_json(run: Path) -> dict | None:
    try:
        return json.loads((run / "run.json").read_text())
    except (OSError, ValueError):
        return None


def list_runs(root: Path | None = None) -> list[dict]:
    """Summaries of the runs on disk (from each run's ``run.json``), newest first."""
    root = root or paths.runs_dir()
    runs = []
    if root.is_dir():
        for d in root.iterdir():
            info = _run_json(d) if d.is_dir() else None
            if info:
                info["path"] = str(d)
                runs.append(info)
    runs.sort(key=lambda r: r.get("updated", 0), reverse=True)
    return runs


def bundled_models(kind: str | None = None) -> list[Path]:
    found = sorted(paths.bundled_checkpoints_dir().glob("*.pt"))
    if kind is None:
        return found
    return [p for p in found if p.stem.endswith(f"-{kind}") or p.stem.startswith(f"{kind}-")]


def bundled_model_info(path: Path) -> dict:
    """A built-in model's summary (written by ``charnn export`` beside it), read without torch so
    that listing models stays fast; just its name and kind if the summary is missing."""
    info = {"name": path.stem, "mode": "chat" if "chat" in path.stem else "lm"}
    try:
        info.update(json.loads(summary_path(path).read_text()))
    except (OSError, ValueError):
        pass
    return {**info, "path": str(path), "bundled": True}


def resolve_checkpoint(spec: str | None, kind: str = "lm") -> Path:
    """A checkpoint file from a path, a run directory, a run name, or (None) the latest of ``kind``."""
    if spec:
        p = Path(spec).expanduser()
        if p.is_file():
            return p
        candidates = [p] if p.is_dir() else []
        candidates.append(paths.runs_dir() / spec)
        for d in candidates:
            if d.is_dir():
                for name in ("best.pt", "last.pt"):
                    if (d / name).is_file():
                        return d / name
                raise CharnnError(f"Run directory {d} holds no checkpoint yet.")
        raise CharnnError(f"No checkpoint or run named {spec!r} (looked for a file, a directory and a run name).")
    for run in list_runs():
        if run.get("mode", "lm") == kind:
            d = Path(run["path"])
            for name in ("best.pt", "last.pt"):
                if (d / name).is_file():
                    return d / name
    bundled = bundled_models(kind)
    if bundled:
        return bundled[0]
    what = "chat model" if kind == "chat" else "model"
    how = "charnn train --mode chat" if kind == "chat" else "charnn train CORPUS"
    raise CharnnError(f"No trained {what} found; train one with `{how}` or pass --checkpoint.")


def resolve_run_dir(spec: str) -> Path:
    """The directory of a run to resume: a run name, a run directory, or a checkpoint inside one."""
    p = Path(spec).expanduser()
    for d in (p if p.is_dir() else p.parent if p.is_file() else None, paths.runs_dir() / spec):
        if d is not None and d.is_dir() and (d / "last.pt").is_file():
            return d
    raise CharnnError(f"No run to resume at {spec!r}: expected a run name or directory holding last.pt.")
