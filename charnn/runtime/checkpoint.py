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
import math
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from charnn.errors import CharnnError
from charnn.fileio import write_atomic

FORMAT = "charnn-checkpoint"
VERSION = 1


@dataclass
class CheckpointData:
    """The layout of a checkpoint, version 1: each field is one key of the saved dict.

    ``to_payload`` is the one writer and ``from_payload`` the one reader. An export keeps the
    fields above ``optimizer`` (the model and its record); a training save fills the rest too.
    """

    kind: str  # lm | chat
    model_config: dict
    tokenizer: dict  # Tokenizer.to_state()
    model: dict  # the weights: the finished model's (the average, for a finished run with one)
    run_name: str = ""
    settings: dict = field(default_factory=dict)  # RunSettings.to_dict()
    step: int = 0
    tokens_seen: int = 0
    elapsed_s: float = 0.0
    best_val_bpc: float | None = math.inf
    held_out_bpc: float | None = None  # the closing evaluation's score over the whole held-out text
    history: dict = field(default_factory=dict)  # train_loss: [loss], eval: [[step, loss, bpc]]
    corpus: dict = field(default_factory=dict)  # path, token counts, sha256
    init_from: dict | None = None  # the model a fine-tuned run started from: name, path, kind, step
    # the training state, absent from an export
    optimizer: dict | None = None
    grad_scaler: dict | None = None
    weight_average: dict | None = None
    resume_weights: dict | None = None  # the last weights, where ``model`` holds their average
    bad_evals: int = 0
    lr_scale: float = 1.0
    task_state: dict = field(default_factory=dict)
    rng: dict = field(default_factory=dict)  # torch: tensor, cuda: tensor or None
    saved_as: str = ""  # last | best
    exported: bool = False

    @property
    def training_weights(self) -> dict:
        """The weights a resumed run goes on from."""
        return self.resume_weights or self.model

    @property
    def trained_without_average(self) -> bool:
        """Written before the weight average existed: such a run goes on without one."""
        return "ema" not in self.settings.get("train", {})

    def to_payload(self) -> dict[str, Any]:
        if self.exported:
            payload = {**{name: getattr(self, name) for name in _EXPORTED}, "exported": True}
        else:
            payload = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "exported"}
        if self.init_from is None:  # a new model's checkpoint keeps the keys it always had
            del payload["init_from"]
        return payload

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> CheckpointData:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known and (v is not None or k in _NULLABLE)}
        values.setdefault("kind", "lm")
        values.setdefault("model_config", {})
        values.setdefault("tokenizer", {})
        values.setdefault("model", {})
        return cls(**values)


_EXPORTED = ("kind", "model_config", "tokenizer", "model", "run_name", "settings", "step", "tokens_seen",
             "elapsed_s", "best_val_bpc", "held_out_bpc", "history", "corpus", "init_from")
# fields whose None is a value, not a missing entry
_NULLABLE = {"best_val_bpc", "held_out_bpc", "init_from", "optimizer", "grad_scaler", "weight_average", "resume_weights"}


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


def read_checkpoint(path: str | os.PathLike, expect_kind: str | None = None) -> CheckpointData:
    """A checkpoint file read into its typed layout (``load_checkpoint`` gives the plain dict)."""
    return CheckpointData.from_payload(load_checkpoint(path, expect_kind))


def summary(ck: dict | CheckpointData, name: str) -> dict:
    """What `charnn models` lists about a checkpoint: the fields of a run's ``run.json``."""
    if isinstance(ck, dict):
        ck = CheckpointData.from_payload(ck)
    cfg, corpus = ck.model_config, ck.corpus
    return {
        "name": name, "mode": ck.kind,
        "corpus": corpus.get("path", "") if isinstance(corpus, dict) else str(corpus or ""),
        "tokenizer": ck.tokenizer.get("kind", "?"), "vocab_size": cfg.get("vocab_size"),
        "cell": cfg.get("cell"), "layers": cfg.get("layers"), "hidden": cfg.get("hidden"),
        "parameters": sum(v.numel() for v in ck.model.values() if hasattr(v, "numel")),
        "step": ck.step, "best_val_bpc": ck.best_val_bpc, "held_out_bpc": ck.held_out_bpc,
        "init_from": ck.init_from.get("name") if isinstance(ck.init_from, dict) else None,
    }


def summary_path(checkpoint: str | os.PathLike) -> Path:
    """Where an exported checkpoint's summary lives: beside it, ``NAME.json`` for ``NAME.pt``."""
    return Path(checkpoint).with_suffix(".json")


def export_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, half: bool = True) -> Path:
    """A small inference-only copy: weights (fp16 when ``half``), config, tokenizer and metrics,
    without optimiser state or training position. Used for the models shipped in checkpoints/."""
    ck = read_checkpoint(src)
    weights = {k: (v.half() if half and v.is_floating_point() else v) for k, v in ck.model.items()}
    export = CheckpointData(
        kind=ck.kind, model_config=ck.model_config, tokenizer=ck.tokenizer, model=weights,
        run_name=ck.run_name, settings=ck.settings, step=ck.step, tokens_seen=ck.tokens_seen,
        elapsed_s=ck.elapsed_s, best_val_bpc=ck.best_val_bpc, held_out_bpc=ck.held_out_bpc,
        history={"eval": ck.history.get("eval", [])}, corpus=ck.corpus, init_from=ck.init_from, exported=True,
    )
    out = save_checkpoint(dst, export.to_payload())
    write_json_atomic(summary_path(out), summary(export, out.stem))
    return out
