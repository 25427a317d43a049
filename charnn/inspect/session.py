"""One inspection: load a language model, read the text, and in one pass through the network
gather its surprise, the chosen units' values and (optionally) the unit finder's sums."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from charnn.errors import CharnnError
from charnn.inspect.activations import CHUNK, run_chunks, signals_of
from charnn.inspect.finder import Finder, Findings
from charnn.inspect.probes import probe_signals
from charnn.inspect.surprise import TOP_K, Surprise, SurpriseCounter, layout


@dataclass(frozen=True)
class UnitRef:
    layer: int
    unit: int
    signal: str = "c"

    @property
    def name(self) -> str:
        return f"{self.layer}:{self.unit} {self.signal}"


@dataclass
class Inspection:
    checkpoint: str
    cell: str
    layers: int
    hidden: int
    surprise: Surprise
    units: dict[UnitRef, np.ndarray]  # each chosen unit's value at every character of the text
    findings: Findings | None

    @property
    def text(self) -> str:
        return self.surprise.layout.text

    @property
    def bits_per_char(self) -> float:
        return self.surprise.bits_per_char


def read_text_arg(arg: str, encoding: str = "utf-8") -> str:
    """TEXT as the command line gives it: ``-`` is stdin, an existing file is read, else it is the text."""
    if arg == "-":
        text = sys.stdin.read()
    elif Path(arg).expanduser().is_file():
        from charnn.text.corpus import read_text

        text = read_text(Path(arg).expanduser(), encoding)
    else:
        text = arg
    if not text:
        raise CharnnError("The text to inspect is empty; give a file, `-` for stdin, or the text itself.")
    return text


def load_for_inspection(spec: str | None, device: str = "auto"):
    """A language model ready to inspect (``runtime.loading.LoadedModel``); a chat model is refused."""
    from charnn.runtime.checkpoint import load_checkpoint
    from charnn.runtime.loading import load_model
    from charnn.runtime.runs import resolve_checkpoint

    path = resolve_checkpoint(spec, "lm")
    if load_checkpoint(path).get("kind") == "chat":
        raise CharnnError(f"{path} is a chat model; charnn inspect looks inside language models "
                          f"(trained with `charnn train CORPUS`).")
    return load_model(path, "lm", device)


def parse_unit(spec: str, signal: str, model) -> UnitRef:
    """``LAYER:N`` and a signal name, checked against the model."""
    cfg = model.config
    try:
        layer, unit = (int(p) for p in spec.split(":"))
    except ValueError:
        raise CharnnError(f"--unit {spec!r} is not LAYER:N (for example 0:117).") from None
    if not 0 <= layer < cfg.layers:
        raise CharnnError(f"Unit {spec} does not exist: the model has {cfg.layers} layer(s), numbered from 0.")
    if not 0 <= unit < cfg.hidden:
        raise CharnnError(f"Unit {spec} does not exist: each layer has {cfg.hidden} units, numbered from 0.")
    if signal not in signals_of(cfg.cell):
        raise CharnnError(f"A {cfg.cell.upper()} has no {signal!r} signal; use one of {', '.join(signals_of(cfg.cell))}.")
    return UnitRef(layer, unit, signal)


def encode(tokenizer, text: str) -> np.ndarray:
    ids = tokenizer.encode_array(text)  # names any characters the model never saw
    if len(ids) < 2:
        raise CharnnError("The text is too short to inspect; it needs at least two tokens.")
    return ids


def inspect_text(loaded, text: str, units: tuple[UnitRef, ...] = (), find: bool = False,
                 top_k: int = TOP_K, chunk: int = CHUNK) -> Inspection:
    """Surprise for every character, the values of ``units`` and, with ``find``, the unit finder."""
    model, tok = loaded.model, loaded.tokenizer
    ids = encode(tok, text)
    lay = layout(tok, text, ids)
    counter = SurpriseCounter(lay, top_k)
    finder = None
    if find:
        last_char = np.clip(lay.starts + lay.lengths - 1, 0, max(len(lay.text) - 1, 0))
        probes = {k: v[last_char] for k, v in probe_signals(lay.text).items()} if lay.text else {}
        finder = Finder(probes)
    traced = {u: np.zeros(len(ids), dtype=np.float32) for u in units}
    for part in run_chunks(model, ids, chunk):
        counter.add(part.start, part.logits)
        for u, values in traced.items():
            series = part.layers[u.layer][u.signal][:, u.unit]
            values[part.start : part.start + len(series)] = series.float().cpu().numpy()
        if finder is not None:
            finder.add(part.start, part.layers)
    cfg = model.config
    per_char = {u: np.repeat(v, lay.lengths) for u, v in traced.items()}
    return Inspection(str(loaded.path), cfg.cell, cfg.layers, cfg.hidden, counter.result(), per_char,
                      finder.result() if finder else None)


def to_json(result: Inspection, values: bool = False) -> dict:
    """The inspection for scripts; ``values`` adds the per-character bits and unit values."""
    s = result.surprise
    out: dict = {
        "checkpoint": result.checkpoint, "cell": result.cell,
        "bits_per_char": s.bits_per_char, "characters": len(result.text), "tokens": len(s.layout.ids),
        "surprising": [{"start": a, "end": b, "text": result.text[a:b], "bits": round(bits, 3)}
                       for a, b, bits in s.hot_spans()],
    }
    f = result.findings
    if f is not None:
        out["units"] = [{"probe": m.probe, "layer": m.layer, "unit": m.unit, "signal": m.signal,
                         "r": round(m.r, 4)} for m in f.matches]
        out["saturation"] = [{"layer": g.layer, "gate": g.gate, "left": round(g.left, 4),
                              "right": round(g.right, 4)} for g in f.saturation]
    if values:
        out["char_bits"] = [None if np.isnan(b) else round(float(b), 3) for b in s.char_bits]
        out["unit_values"] = {u.name: [round(float(v), 4) for v in vals] for u, vals in result.units.items()}
    return out
