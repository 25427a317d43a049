"""Runs side by side: each run's validation curve (bits/char against steps, tokens seen and
time) read from its ``events.jsonl``, and the settings in which the runs differ. No UI code:
the Models screen and ``charnn models --compare`` both read it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from charnn.errors import CharnnError
from charnn.runtime.runs import RunRecord
from charnn.training.events import Eval, Start, Step, from_dict

AXES = {"tokens": "tokens seen", "seconds": "time"}
VOLATILE = {"train.device", "train.threads"}  # how the run was placed, not what it learned


@dataclass
class RunCurve:
    record: RunRecord
    settings: dict[str, object] = field(default_factory=dict)  # flattened: {"model.hidden": 128, ...}
    steps: list[int] = field(default_factory=list)
    tokens: list[float] = field(default_factory=list)  # tokens seen at each evaluation
    seconds: list[float] = field(default_factory=list)  # training time at each evaluation
    bpc: list[float] = field(default_factory=list)
    total_tokens: float = 0.0
    total_seconds: float = 0.0

    @property
    def name(self) -> str:
        return self.record.name

    def xs(self, axis: str) -> list[float]:
        return self.tokens if axis == "tokens" else self.seconds

    def at(self, axis: str, x: float) -> float | None:
        """The curve's bits/char at ``x``, interpolated between evaluations; None outside them."""
        xs = self.xs(axis)
        if not xs or x < xs[0] or x > xs[-1]:
            return None
        for (x0, y0), (x1, y1) in zip(zip(xs, self.bpc, strict=True), zip(xs[1:], self.bpc[1:], strict=True),
                                      strict=False):
            if x0 <= x <= x1:
                return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
        return self.bpc[-1]


def flatten(settings: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def read_curve(record: RunRecord) -> RunCurve:
    """A run's validation curve from its events (the last evaluation of each step wins, as after a resume)."""
    curve = RunCurve(record)
    path = Path(record.path) / "events.jsonl"
    if record.bundled or not path.is_file():
        raise CharnnError(f"{record.name} has no training history to compare (no events.jsonl in {record.path}).")
    at_step: dict[int, tuple[float, float]] = {0: (0.0, 0.0)}
    evals: dict[int, float] = {}
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                e = from_dict(json.loads(line))
            except (ValueError, TypeError, KeyError):
                continue  # a half-written last line of a run still training
            if isinstance(e, Start) and isinstance(e.settings, dict):
                curve.settings = {k: v for k, v in flatten(e.settings).items() if k not in VOLATILE}
            elif isinstance(e, Step):
                at_step[e.step] = (float(e.tokens), float(e.elapsed_s))
            elif isinstance(e, Eval) and not e.final:
                evals[e.step] = e.val_bpc
    known = sorted(at_step)
    for step in sorted(evals):
        tokens, seconds = _between(known, at_step, step)
        curve.steps.append(step)
        curve.tokens.append(tokens)
        curve.seconds.append(seconds)
        curve.bpc.append(evals[step])
    tokens, seconds = at_step[known[-1]]
    curve.total_tokens = max([tokens, *curve.tokens])
    curve.total_seconds = max([seconds, *curve.seconds])
    return curve


def _between(known: list[int], at_step: dict[int, tuple[float, float]], step: int) -> tuple[float, float]:
    """Tokens and time at ``step``: progress is reported every few steps, so interpolate (or
    carry the last rate on past the last report)."""
    import bisect

    i = bisect.bisect_left(known, step)
    if i < len(known) and known[i] == step:
        return at_step[step]
    a = known[i - 1] if i > 0 else 0
    b = known[i] if i < len(known) else None
    (ta, sa) = at_step.get(a, (0.0, 0.0))
    if b is None:
        f = step / a if a else 0.0
        return ta * f, sa * f
    (tb, sb) = at_step[b]
    f = (step - a) / (b - a)
    return ta + (tb - ta) * f, sa + (sb - sa) * f


def find_runs(specs: list[str]) -> list[RunRecord]:
    """The runs named (a run name or directory), in the order given."""
    from charnn.runtime.runs import list_runs, read_record

    if len(specs) < 2:
        raise CharnnError("Give at least two runs to compare (`charnn models` lists their names).")
    runs = {r.name: r for r in list_runs()}
    out = []
    for spec in specs:
        p = Path(spec).expanduser()
        record = runs.get(spec) or (read_record(p) if p.is_dir() else None)
        if record is None:
            raise CharnnError(f"No run named {spec!r}; `charnn models` lists the runs.")
        out.append(record)
    return out


def differences(curves: list[RunCurve]) -> list[tuple[str, list[str]]]:
    """The settings whose values are not the same in every run: (name, each run's value)."""
    keys = sorted({k for c in curves for k in c.settings})
    out = []
    for key in keys:
        values = [show(c.settings.get(key, "–")) for c in curves]
        if len(set(values)) > 1:
            out.append((key, values))
    return out


def show(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "–" if value is None else str(value)


def common_points(curves: list[RunCurve], axis: str, count: int = 4) -> list[float]:
    """Up to ``count`` round values of ``axis`` that every curve reaches."""
    from charnn.tui.braille import nice_step

    reach = min((c.xs(axis)[-1] if c.xs(axis) else 0.0) for c in curves)
    if reach <= 0:
        return []
    step = nice_step(reach, count)
    points = [round(step * i, 12) for i in range(1, count + 2) if step * i <= reach]
    return points[-count:]
