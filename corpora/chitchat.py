"""``chitchat``: the built-in chat corpus, 7,168 real human conversations (MIT licence).

The text comes from the ``chitchat-dataset`` package on PyPI (the Chit Chat
Challenge data, shipped inside the package, so nothing is downloaded). Each
conversation is a list of runs of consecutive messages by one sender; a run
becomes one turn, its messages joined by a space.

Two files are written once into ``<cache>/corpora/`` (atomically):

* ``dialogue_file()``: the dialogue format of ``charnn.text.dialogue`` with
  ``A:``/``B:`` speaker prefixes, for ``charnn train --mode chat``;
* ``flat_text_file()``: the same turns, one per line, conversations separated
  by blank lines, for a language model.
"""

from __future__ import annotations

from pathlib import Path

from charnn.corpora.cache import corpora_cache_dir, write_atomic
from charnn.errors import CharnnError
from charnn.text.dialogue import Conversation, add_turn, format_plain

NAME = "chitchat"
VERSION = 1  # bump when the files' format changes, so old caches are rebuilt
SPEAKERS = ("A", "B")


def conversations() -> list[Conversation]:
    """The conversations, in the package's order, as lists of turns."""
    try:
        import chitchat_dataset
    except ImportError:
        raise CharnnError("The built-in chat corpus needs the chitchat-dataset package: "
                          "pip install chitchat-dataset.") from None
    try:
        data = chitchat_dataset.Dataset()
    except (OSError, ValueError) as e:
        raise CharnnError(f"The chitchat-dataset package's data could not be read ({e}); reinstall it.") from None
    out = []
    for conv in data.values():
        turns: list[str] = []
        last = None
        for run in conv.get("messages", []):
            sender = run[0].get("sender") if run else None
            last = add_turn(turns, " ".join(m.get("text", "") for m in run), sender, last)
        if turns:
            out.append(turns)
    return out


def _build(path: Path, speakers: tuple[str, ...]) -> Path:
    if path.is_file() and path.stat().st_size > 0:
        return path
    text = format_plain(conversations(), speakers)
    write_atomic(path, [text.encode("utf-8")])
    return path


def dialogue_file() -> Path:
    """The chat corpus as a plain-text dialogue file (built once, then cached)."""
    return _build(corpora_cache_dir() / f"{NAME}-dialogues-v{VERSION}.txt", SPEAKERS)


def flat_text_file() -> Path:
    """The same conversations as plain text for a language model (built once, then cached)."""
    return _build(corpora_cache_dir() / f"{NAME}-v{VERSION}.txt", ())
