"""Checkpoint files: one self-contained file per save, written atomically, loaded safely.

A checkpoint is a dict of tensors and plain values (no classes), saved with
``torch.save`` and read back with ``torch.load(weights_only=True)``, whose
restricted unpickler refuses anything that would run code. It is written to a
temporary file in the same directory, flushed to disk and renamed over the
old one, so a crash at any moment leaves the previous file whole.
"""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from typing import Any

from charnn.errors import CharnnError
from charnn.fileio import write_atomic

FORMAT = "charnn-checkpoint"
VERSION = 1


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    import torch

    path = Path(path)
    payload = {"format": FORMAT, "version": VERSION, "saved_at": time.time(), **payload}
    try:
        write_atomic(path, lambda f: torch.save(payload, f))
    except OSError as e:
        raise CharnnError(f"Could not save checkpoint to {path}: {_why(e)}; the previous checkpoint there "
                          f"is kept.") from None
    return path


def _why(e: OSError) -> str:
    if e.errno == errno.ENOSPC:
        return "the disk is full"
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "the directory is read-only or not writable"
    return (e.strerror or str(e)).rstrip(".")


def write_json_atomic(path: Path, data: dict) -> None:
    write_atomic(path, lambda f: f.write(json.dumps(data, indent=2).encode()))


def load_checkpoint(path: str | os.PathLike, expect_kind: str | None = None) -> dict[str, Any]:
    """The checkpoint's contents, or a CharnnError saying why it cannot be used."""
    import pickle
    import warnings
    import zipfile

    import torch

    p = Path(path).expanduser()
    if not p.exists():
        raise CharnnError(f"Checkpoint not found: {p} does not exist.")
    if p.is_dir():
        raise CharnnError(f"{p} is a directory, not a checkpoint file.")
    damaged = f"{p} is not a usable charnn checkpoint: it is truncated or corrupted."
    try:
        # torch does not check the zip's CRCs, so flipped bytes in the weights would load silently
        if zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as z:
                if z.testzip() is not None:
                    raise CharnnError(damaged)
        with warnings.catch_warnings():  # a foreign file's pickle-protocol warnings are noise here
            warnings.simplefilter("ignore")
            data = torch.load(p, map_location="cpu", weights_only=True)
    except CharnnError:
        raise
    except pickle.UnpicklingError:
        raise CharnnError(
            f"{p} is not a charnn checkpoint: it holds objects that a safe load refuses to run."
        ) from None
    except PermissionError:
        raise CharnnError(f"Cannot read {p}: permission denied.") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, AttributeError, KeyError, IndexError, TypeError):
        if not p.stat().st_size:
            raise CharnnError(f"{p} is not a usable charnn checkpoint: it is empty.") from None
        raise CharnnError(damaged) from None
    except Exception:  # noqa: BLE001 - any other failure of a foreign file is the same user error
        raise CharnnError(damaged) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CharnnError(f"{p} is not a charnn checkpoint.")
    if data.get("version") != VERSION:
        raise CharnnError(
            f"{p} was written by a different charnn checkpoint format (version {data.get('version')}, "
            f"this charnn reads version {VERSION})."
        )
    kind = data.get("kind")
    if expect_kind and kind != expect_kind:
        want = {"lm": "a language model", "chat": "a chat model"}
        hint = "charnn chat" if kind == "chat" else "charnn generate"
        raise CharnnError(
            f"{p} is {want.get(kind, repr(kind))}, not {want.get(expect_kind, expect_kind)}; use it with {hint}."
        )
    return data


def summary(ck: dict, name: str) -> dict:
    """What `charnn models` lists about a checkpoint: the fields of a run's ``run.json``."""
    cfg = ck.get("model_config") or {}
    corpus = ck.get("corpus")
    return {
        "name": name, "mode": ck.get("kind", "lm"),
        "corpus": corpus.get("path", "") if isinstance(corpus, dict) else str(corpus or ""),
        "tokenizer": (ck.get("tokenizer") or {}).get("kind", "?"), "vocab_size": cfg.get("vocab_size"),
        "cell": cfg.get("cell"), "layers": cfg.get("layers"), "hidden": cfg.get("hidden"),
        "parameters": sum(v.numel() for v in ck.get("model", {}).values() if hasattr(v, "numel")),
        "step": ck.get("step", 0), "best_val_bpc": ck.get("best_val_bpc"), "held_out_bpc": ck.get("held_out_bpc"),
    }


def summary_path(checkpoint: str | os.PathLike) -> Path:
    """Where an exported checkpoint's summary lives: beside it, ``NAME.json`` for ``NAME.pt``."""
    return Path(checkpoint).with_suffix(".json")


def export_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, half: bool = True) -> Path:
    """A small inference-only copy: weights (fp16 when ``half``), config, tokenizer and metrics,
    without optimiser state or training position. Used for the models shipped in checkpoints/."""
    ck = load_checkpoint(src)
    weights = {k: (v.half() if half and v.is_floating_point() else v) for k, v in ck["model"].items()}
    keep = ("kind", "run_name", "settings", "model_config", "tokenizer", "step", "tokens_seen",
            "elapsed_s", "best_val_bpc", "held_out_bpc", "history", "corpus")
    payload = {k: ck[k] for k in keep if k in ck}
    payload["history"] = {"eval": ck.get("history", {}).get("eval", [])}
    payload.update(model=weights, exported=True)
    out = save_checkpoint(dst, payload)
    write_json_atomic(summary_path(out), summary(payload, out.stem))
    return out
