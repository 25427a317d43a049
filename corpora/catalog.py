"""Built-in corpus names, resolved to text files on this machine."""

from __future__ import annotations

from pathlib import Path

from charnn.errors import CharnnError


def resolve_corpus(arg: str | None, mode: str = "lm") -> Path:
    if arg is None:
        raise CharnnError("Give a corpus: a text file path.")
    return Path(arg).expanduser()


def print_catalog() -> None:
    print("No built-in corpora yet.")
