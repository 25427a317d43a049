"""What a training run says while it runs: small dataclasses, one JSON object each.

The trainer yields these and knows nothing about how they are shown; the CLI
renders them (rich, plain lines or ``--jsonl``) and the TUI reads the JSON
lines from a child process and turns them back into events here.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass
class Start:
    run_dir: str
    run_name: str
    mode: str
    device: str
    parameters: int
    train_tokens: int
    val_tokens: int
    vocab_size: int
    tokenizer: str
    budget: str
    settings: dict
    resumed_step: int = 0


@dataclass
class Step:
    step: int
    epoch: float
    loss: float  # nats per token, mean since the last Step event
    bpc: float  # bits per character
    lr: float
    tokens_per_s: float
    elapsed_s: float
    eta_s: float | None
    progress: float  # 0..1 of the budget
    tokens: int  # training tokens seen so far
    gpu_mem_mib: float | None = None  # peak CUDA memory allocated, on CUDA only
    teacher_forcing: float | None = None  # chat: the teacher-forcing ratio of the last step (None: not given)


@dataclass
class Eval:
    step: int
    val_loss: float
    val_bpc: float
    best_val_bpc: float
    improved: bool
    train_bpc: float | None = None
    final: bool = False


@dataclass
class Sample:
    step: int
    text: str
    val_bpc: float | None = None


@dataclass
class Checkpoint:
    step: int
    path: str
    kind: str  # last | best


@dataclass
class Notice:
    message: str


@dataclass
class Done:
    step: int
    reason: str  # budget | stopped | early-stop | interrupted | failed
    best_val_bpc: float | None  # the best periodic check (a slice of the held-out text)
    run_dir: str
    elapsed_s: float
    tokens_per_s: float
    held_out_bpc: float | None = None  # the closing evaluation over the whole held-out text


@dataclass
class Error:
    message: str


Event = Start | Step | Eval | Sample | Checkpoint | Notice | Done | Error
EVENT_TYPES: dict[str, type] = {
    cls.__name__.lower(): cls for cls in (Start, Step, Eval, Sample, Checkpoint, Notice, Done, Error)
}


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def to_dict(event: Event) -> dict:
    return {"event": type(event).__name__.lower(), **_clean(asdict(event))}


def to_json(event: Event) -> str:
    return json.dumps(to_dict(event), ensure_ascii=False)


def from_dict(data: dict) -> Event:
    cls = EVENT_TYPES[data["event"]]
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})


def from_json(line: str) -> Event:
    return from_dict(json.loads(line))
