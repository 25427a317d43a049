"""Default model and training sizes, chosen by measurement (see benchmarks/)."""

from __future__ import annotations

from charnn.config import RunSettings

LM_DEFAULTS = {"layers": 2, "hidden": 512, "dropout": 0.0, "batch_size": 32, "seq_len": 128, "lr": 3e-3}


def apply_presets(s: RunSettings) -> None:
    d = LM_DEFAULTS
    s.model.layers, s.model.hidden, s.model.dropout = d["layers"], d["hidden"], d["dropout"]
    s.train.batch_size, s.train.seq_len, s.train.lr = d["batch_size"], d["seq_len"], d["lr"]
