"""Shared fixtures: an isolated charnn home per test, the shared corpus, small threads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHAKESPEARE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tinyshakespeare.txt"

# two cores: one intra-op thread per test process keeps runs predictable
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def charnn_home(tmp_path, monkeypatch):
    """Every test gets its own runs/cache directory; nothing touches the user's."""
    home = tmp_path / "charnn-home"
    monkeypatch.setenv("CHARNN_HOME", str(home))
    monkeypatch.delenv("CHARNN_CACHE", raising=False)
    if SHAKESPEARE.exists():
        monkeypatch.setenv("CHARNN_TINYSHAKESPEARE", str(SHAKESPEARE))
    return home


@pytest.fixture
def shakespeare() -> Path:
    if not SHAKESPEARE.exists():
        pytest.skip("../shared/data/tinyshakespeare.txt is not present")
    return SHAKESPEARE


@pytest.fixture
def small_text(tmp_path) -> Path:
    """A few kilobytes of our own text, enough to train a tiny model on."""
    lines = [
        f"the {a} {b} sat on the {c} and looked at the {d}."
        for a in ("red", "blue", "old", "small")
        for b in ("cat", "dog", "fox")
        for c in ("mat", "wall", "hill")
        for d in ("moon", "sea", "road")
    ]
    p = tmp_path / "small.txt"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def tiny_args(*extra: str) -> list[str]:
    """CLI flags for a model small enough to train in a second or two."""
    return ["--layers", "1", "--hidden", "32", "--batch-size", "8", "--seq-len", "32",
            "--threads", "1", "--sample-length", "20", *extra]
