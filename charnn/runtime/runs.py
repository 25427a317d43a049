"""The run store: where runs and the built-in models are, what each one is, and which file to open.

Every listing (``charnn models``, the Models screen, the TUI's pickers) reads the same
``RunRecord``; every command that takes a model name resolves it here (``find_model``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

from charnn import paths
from charnn.errors import CharnnError
from charnn.runtime.checkpoint import summary_path, write_json_atomic

CHECKPOINT_FILES = ("best.pt", "last.pt")  # the order a run's files are opened in


@dataclass
class RunRecord:
    """A run's ``run.json`` (or a built-in model's summary), read tolerantly: a missing or
    mistyped field is None, so records written by an older or newer charnn still list."""

    name: str
    path: Path  # the run directory, or a built-in model's file
    mode: str = "lm"
    corpus: str | None = None
    tokenizer: str | None = None
    vocab_size: int | None = None
    cell: str | None = None
    layers: int | None = None
    hidden: int | None = None
    parameters: int | None = None
    step: int | None = None
    best_val_bpc: float | None = None
    held_out_bpc: float | None = None
    reply_bpc: float | None = None  # chat: held-out reply bits/char with the context (`charnn eval`)
    hits_at_1: float | None = None  # chat: the real reply ranked first among 20, by loss given the context
    hits_at_1_pmi: float | None = None  # the same, by loss with the context minus loss without
    updated: float | None = None
    init_from: str | None = None  # the name of the model a fine-tuned run started from
    bundled: bool = False

    @classmethod
    def from_json(cls, data: dict, path: Path, bundled: bool = False) -> RunRecord:
        types = {"corpus": str, "tokenizer": str, "cell": str, "vocab_size": int, "layers": int, "hidden": int,
                 "parameters": int, "step": int, "best_val_bpc": float, "held_out_bpc": float, "updated": float,
                 "reply_bpc": float, "hits_at_1": float, "hits_at_1_pmi": float, "init_from": str}
        values = {key: _typed(data.get(key), kind) for key, kind in types.items()}
        guess = ("chat" if "chat" in path.stem else "lm") if bundled else "lm"
        mode = data.get("mode") if data.get("mode") in ("lm", "chat") else guess
        name = data.get("name") if isinstance(data.get("name"), str) and data.get("name") else path.stem
        return cls(name=name, path=path, mode=mode, bundled=bundled, **values)

    def checkpoint(self) -> Path | None:
        """The file to open for this model: a built-in model's own file; a run's best.pt, else last.pt."""
        if self.bundled:
            return self.path if self.path.is_file() else None
        return run_checkpoint(self.path)

    @property
    def resumable(self) -> bool:
        return not self.bundled and (self.path / "last.pt").is_file()

    @property
    def size(self) -> str:
        return f"{self.layers}x{self.hidden}" if self.layers and self.hidden else "?"

    def to_json(self) -> dict:
        return {f.name: (str(v) if isinstance(v := getattr(self, f.name), Path) else v) for f in fields(self)}


def _typed(value, kind: type):
    if isinstance(value, bool):
        return None
    if kind is float and isinstance(value, int | float):
        return float(value)
    return value if isinstance(value, kind) else None


CHAT_SCORES = ("reply_bpc", "hits_at_1", "hits_at_1_pmi")


def record_scores(checkpoint: Path, scores: dict) -> Path | None:
    """Add ``scores`` (a chat model's headline figures) to the record that lists ``checkpoint``: its run's
    ``run.json`` when it is the file the run opens, or a built-in model's summary; the file written, or None."""
    checkpoint = Path(checkpoint)
    record = checkpoint.parent / "run.json"
    if not (record.is_file() and run_checkpoint(checkpoint.parent) == checkpoint):
        record = summary_path(checkpoint)
        if not record.is_file():
            return None
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    data.update({k: float(v) for k, v in scores.items() if k in CHAT_SCORES and isinstance(v, int | float)})
    try:
        write_json_atomic(record, data)
    except OSError:
        return None
    return record


def run_checkpoint(run_dir: Path) -> Path | None:
    """Which file of a run to open: best.pt (the best model), else last.pt; None before the first save."""
    for name in CHECKPOINT_FILES:
        if (run_dir / name).is_file():
            return run_dir / name
    return None


def read_record(run_dir: Path) -> RunRecord | None:
    try:
        data = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return None
    return RunRecord.from_json(data, run_dir) if isinstance(data, dict) else None


def list_runs(root: Path | None = None) -> list[RunRecord]:
    """The runs on disk (each from its ``run.json``), newest first."""
    root = root or paths.runs_dir()
    runs = [r for d in root.iterdir() if d.is_dir() and (r := read_record(d))] if root.is_dir() else []
    runs.sort(key=lambda r: r.updated or 0, reverse=True)
    return runs


def bundled_models(kind: str | None = None) -> list[Path]:
    found = sorted(paths.bundled_checkpoints_dir().glob("*.pt"))
    if kind is None:
        return found
    return [p for p in found if p.stem.endswith(f"-{kind}") or p.stem.startswith(f"{kind}-")]


def bundled_model_info(path: Path) -> RunRecord:
    """A built-in model's record (the summary ``charnn export`` wrote beside it), read without torch
    so that listing models stays fast; just its name and kind if the summary is missing."""
    try:
        data = json.loads(summary_path(path).read_text())
    except (OSError, ValueError):
        data = {}
    return RunRecord.from_json(data if isinstance(data, dict) else {}, path, bundled=True)


def list_models(kind: str | None = None) -> list[RunRecord]:
    """Every model a name can open: the user's runs (newest first), then the built-in models."""
    records = [*list_runs(), *(bundled_model_info(p) for p in bundled_models())]
    return [r for r in records if kind is None or r.mode == kind]


@dataclass(frozen=True)
class ModelMatch:
    """What a model name (or path) opens, and the built-in model of that name it hides, if any."""

    path: Path
    record: RunRecord | None = None
    shadowed: RunRecord | None = None

    @property
    def notice(self) -> str:
        if self.record is None or self.shadowed is None:
            return ""
        return (f"{self.record.name} is your run in {self.record.path}; the built-in model of that name "
                f"is {self.shadowed.path}.")


def _find_run(name: str) -> tuple[Path | None, RunRecord | None]:
    d = paths.runs_dir() / name
    if d.is_dir():
        return d, read_record(d)
    for run in list_runs():
        if run.name == name:
            return run.path, run
    return None, None


def _find_builtin(name: str) -> RunRecord | None:
    for p in bundled_models():
        info = bundled_model_info(p)
        if name in (p.stem, info.name):
            return info
    return None


def find_model(spec: str) -> ModelMatch:
    """The checkpoint a path, a run directory, a run name or a built-in model's name opens.
    The user's run wins over a built-in model of the same name (``shadowed`` says so)."""
    p = Path(spec).expanduser()
    if p.is_file():
        return ModelMatch(p)
    run_dir, record = (p, read_record(p)) if p.is_dir() else _find_run(spec)
    builtin = None if p.is_dir() else _find_builtin(spec)
    if run_dir is not None:
        checkpoint = run_checkpoint(run_dir)
        if checkpoint is None:
            raise CharnnError(f"Run directory {run_dir} holds no checkpoint yet.")
        return ModelMatch(checkpoint, record, builtin)
    if builtin is not None and builtin.checkpoint() is not None:
        return ModelMatch(builtin.path, builtin)
    raise CharnnError(f"No checkpoint, run or model named {spec!r}; `charnn models` lists the names.")


def resolve_checkpoint(spec: str | None, kind: str = "lm") -> Path:
    """A checkpoint file from a path, a run directory, a run or model name, or (None) the latest of ``kind``."""
    if spec:
        return find_model(spec).path
    for record in list_models(kind):
        if (checkpoint := record.checkpoint()) is not None:
            return checkpoint
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
