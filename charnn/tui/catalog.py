"""The models on disk as the screens show them: runs (newest first), then built-in models."""

from __future__ import annotations

import os
import time
from pathlib import Path

from charnn.report import fmt_count, score


def fmt_date(ts: float | None, short: bool = False) -> str:
    if not ts:
        return "–"
    return time.strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M", time.localtime(ts))


def model_choices(kind: str) -> list[tuple[str, str]]:
    """(label, checkpoint path) for every model of ``kind`` ("lm" or "chat") on disk."""
    from charnn.runtime.runs import list_models

    out = []
    for record in list_models(kind):
        if (checkpoint := record.checkpoint()) is None:
            continue
        if record.bundled:
            out.append((f"{record.name}  ·  built-in", str(checkpoint)))
            continue
        best = score(record.held_out_bpc, record.best_val_bpc) or "not evaluated"
        size = f"{record.layers or '?'}×{record.hidden or '?'}"
        out.append((f"{record.name}  ·  {size} {record.tokenizer or ''}  ·  step {record.step or 0:,}  ·  {best}",
                    str(checkpoint)))
    return out


def latest_checkpoint(kind: str) -> tuple[str, float] | None:
    """The checkpoint a screen opens by default, with its modification time (to notice updates)."""
    from charnn.errors import CharnnError
    from charnn.runtime.runs import resolve_checkpoint

    try:
        path = resolve_checkpoint(None, kind)
    except CharnnError:
        return None
    key = model_key(str(path))
    return key if key[1] else None


def model_key(path: str) -> tuple[str, float]:
    """A model file and its modification time: a screen reloads when either changes (0.0: unreadable)."""
    try:
        return path, os.path.getmtime(path)
    except OSError:
        return path, 0.0


def describe_loaded(loaded) -> str:
    """One line about a loaded model: name, file, tokens, size, step, best val bpc."""
    ck = loaded.checkpoint
    cfg = ck.get("model_config", {}) or {}
    name = ck.get("run_name") or Path(loaded.path).parent.name
    tok = getattr(loaded.tokenizer, "kind", "?")
    params = sum(p.numel() for p in loaded.model.parameters())
    parts = [f"{name}/{Path(loaded.path).name}", f"{tok} {loaded.tokenizer.vocab_size}"]
    if cfg.get("layers"):
        parts.append(f"{cfg.get('layers')}×{cfg.get('hidden')} {cfg.get('cell', '')}".strip())
    parts.append(f"{fmt_count(params)} params")
    if ck.get("step") is not None:
        parts.append(f"step {ck['step']:,}")
    if label := score(ck.get("held_out_bpc"), ck.get("best_val_bpc")):
        parts.append(label)
    return " · ".join(parts)
