"""Novelty: how much of a generated text is new, and which spans were copied from the corpus.

A span counts as copied when it holds a run of ``SPAN`` (20) characters found verbatim in the
training text. The index is the sorted 64-bit rolling hashes of every 20-character window of the
corpus, built once per corpus content and cached beside the token cache: 8 bytes per character,
memory-mapped when read. Corpora longer than ``MAX_INDEX_CHARS`` are indexed over their first
``MAX_INDEX_CHARS`` characters (256 MiB of index), and the result says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from charnn import paths
from charnn.errors import CharnnError
from charnn.fileio import write_atomic

SPAN = 20
MAX_INDEX_CHARS = 32 * 1024 * 1024
_BASE = np.uint64(1_000_003)


@dataclass
class NoveltyIndex:
    hashes: np.ndarray  # sorted uint64, one per SPAN-character window of the indexed text
    corpus: Path
    indexed_chars: int
    complete: bool  # False when the corpus was longer than MAX_INDEX_CHARS


@dataclass
class Novelty:
    text: str
    new_share: float  # share of the text's characters outside every copied span
    copied: list[tuple[int, int]]  # (start, end) of each span found verbatim in the corpus
    note: str = ""  # what the figure does not cover, said plainly (e.g. an index cut at the limit)


def window_hashes(codes: np.ndarray, span: int = SPAN) -> np.ndarray:
    """The polynomial hash of every ``span``-long window of ``codes`` (mod 2**64)."""
    n = len(codes) - span + 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint64)
    c = codes.astype(np.uint64)
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(span):
            h = h * _BASE + c[j : j + n]
    return h


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def corpus_path(checkpoint: dict) -> Path:
    """The training text of a checkpoint, or a sentence saying it is not on this machine."""
    corpus = checkpoint.get("corpus") or {}
    where = corpus.get("path") if isinstance(corpus, dict) else str(corpus)
    if not where:
        raise CharnnError("The checkpoint does not say which text it was trained on, so novelty cannot be measured.")
    p = Path(where).expanduser()
    if not p.is_file():
        raise CharnnError(f"The model's training text {p} is not on this machine, so novelty cannot be measured.")
    return p


def novelty_index(corpus: Path, encoding: str = "utf-8", errors: str = "strict",
                  limit: int = MAX_INDEX_CHARS) -> NoveltyIndex:
    """The corpus's window index: built on first use, then read from the cache."""
    from charnn.text.corpus import hash_file

    info = hash_file(corpus)
    root = paths.cache_dir() / "novelty"
    stem = f"{info.sha256[:24]}-{SPAN}-{limit}-{encoding}-{errors}"
    data, meta = root / f"{stem}.u64", root / f"{stem}.json"
    if not (data.is_file() and meta.is_file()):
        _build(corpus, encoding, errors, limit, data, meta)
    m = json.loads(meta.read_text())
    hashes = np.memmap(data, dtype=np.uint64, mode="r") if m["windows"] else np.zeros(0, dtype=np.uint64)
    return NoveltyIndex(hashes, corpus, m["indexed_chars"], m["complete"])


def _build(corpus: Path, encoding: str, errors: str, limit: int, data: Path, meta: Path) -> None:
    from charnn.text.corpus import iter_text

    parts, carry, n, complete = [], "", 0, True
    for chunk in iter_text(corpus, encoding, errors):
        if n + len(chunk) > limit:
            chunk, complete = chunk[: limit - n], False
        text = carry + chunk
        parts.append(window_hashes(_codes(text)))
        carry, n = text[-(SPAN - 1):], n + len(chunk)
        if not complete:
            break
    hashes = np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.uint64)
    write_atomic(data, lambda f: f.write(hashes.tobytes()))
    info = json.dumps({"indexed_chars": n, "complete": complete, "windows": int(len(hashes))}).encode()
    write_atomic(meta, lambda f: f.write(info))


def novelty(index: NoveltyIndex, text: str) -> Novelty:
    """How much of ``text`` is new against ``index``; copied spans are runs of found windows."""
    h = window_hashes(_codes(text))
    found = np.zeros(len(h), dtype=bool)
    if len(h) and len(index.hashes):
        pos = np.searchsorted(index.hashes, h)
        found = index.hashes[np.minimum(pos, len(index.hashes) - 1)] == h
    covered = np.zeros(len(text) + 1, dtype=np.int64)
    starts = np.flatnonzero(found)
    np.add.at(covered, starts, 1)
    np.add.at(covered, starts + SPAN, -1)
    copied_mask = np.cumsum(covered[:-1]) > 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], copied_mask.astype(np.int8), [0]])))
    spans = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    share = 1.0 - float(copied_mask.sum()) / len(text) if text else 1.0
    note = "" if index.complete else (f"only the first {index.indexed_chars:,} characters of {index.corpus} "
                                      f"are indexed (the limit is {MAX_INDEX_CHARS:,})")
    return Novelty(text, share, spans, note)
