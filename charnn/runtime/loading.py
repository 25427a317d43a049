"""Rebuild a model and its tokenizer from a checkpoint (any kind), ready to use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charnn.errors import CharnnError
from charnn.runtime.checkpoint import load_checkpoint
from charnn.runtime.runs import resolve_checkpoint
from charnn.text.tokenizers import Tokenizer, tokenizer_from_state


@dataclass
class LoadedModel:
    path: Path
    kind: str
    model: Any
    tokenizer: Tokenizer
    checkpoint: dict
    device: Any


def build_model(kind: str, config: dict):
    if kind == "lm":
        from charnn.config import ModelConfig
        from charnn.models.lm import RNNLanguageModel

        return RNNLanguageModel(ModelConfig.from_dict(config))
    if kind == "chat":
        from charnn.models.seq2seq import Seq2SeqConfig, Seq2SeqModel

        return Seq2SeqModel(Seq2SeqConfig.from_dict(config))
    raise CharnnError(f"The checkpoint holds an unknown model kind {kind!r}.")


def load_model(spec: str | Path | None, kind: str = "lm", device: str = "auto") -> LoadedModel:
    """Load for inference: ``spec`` is a checkpoint path, run dir, run name, or None for the latest."""
    from charnn.runtime.device import pick_device

    path = resolve_checkpoint(str(spec) if spec else None, kind)
    ck = load_checkpoint(path, expect_kind=kind)
    try:
        tokenizer = tokenizer_from_state(ck["tokenizer"])
        model = build_model(ck["kind"], ck["model_config"])
        model.load_state_dict(ck["model"])
    except CharnnError:
        raise
    except (KeyError, RuntimeError, TypeError, ValueError) as e:
        raise CharnnError(f"{path} is damaged or incomplete ({type(e).__name__}); it cannot be loaded.") from None
    dev = pick_device(device)
    model.to(dev).eval()
    return LoadedModel(path=path, kind=ck["kind"], model=model, tokenizer=tokenizer, checkpoint=ck, device=dev)
