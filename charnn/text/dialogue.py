"""Dialogue files: conversations as lists of turns, and (context, reply) examples from them.

Two formats are read:

* plain text: one turn per line, conversations separated by blank lines, with
  optional ``Name:`` speaker prefixes (consecutive lines of one speaker are
  merged into one turn);
* JSON lines: one conversation per line, ``{"messages": [{"role": ..,
  "content": ..}, ..]}`` (``system`` messages are skipped; consecutive
  messages of one role are merged).

A turn's whitespace is collapsed to single spaces, so any turn fits on one
line. Anything malformed is reported as one ``CharnnError`` naming the file
and line, never as a traceback.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from charnn.errors import CharnnError

Conversation = list[str]
Example = tuple[tuple[str, ...], str]  # (previous turns, oldest first; the reply)

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
# "Alice: hi", "Speaker 2: hi", "Dr. Who: hi": a short name, then a colon and a space (or the end)
_SPEAKER = re.compile(r"^([A-Za-z0-9_][\w.'\- ]{0,31}?)\s*:(?:\s+(.*))?$")
_MAX_NAME_WORDS = 3


def clean_turn(text: str) -> str:
    """One line of text: whitespace runs (newlines included) become one space."""
    return " ".join(text.split())


def add_turn(turns: list[str], text: str, speaker: str | None, last: str | None) -> str | None:
    """Append a cleaned turn, merging it into the previous one when the same speaker goes on;
    returns the speaker to compare the next turn with."""
    said = clean_turn(text)
    if not said:
        return last
    if speaker is not None and speaker == last and turns:
        turns[-1] += " " + said
    else:
        turns.append(said)
    return speaker


def _speaker(line: str) -> tuple[str, str] | None:
    m = _SPEAKER.match(line)
    if not m or len(m.group(1).split()) > _MAX_NAME_WORDS:
        return None
    return m.group(1).strip(), (m.group(2) or "")


class _Problems:
    """Collects malformed lines; raises one error naming the first and counting the rest."""

    def __init__(self, source: str):
        self.source = source
        self.items: list[tuple[int, str]] = []

    def add(self, line: int, problem: str) -> None:
        self.items.append((line, problem))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        line, problem = self.items[0]
        more = len(self.items) - 1
        tail = f" ({more} more malformed line{'s' if more > 1 else ''}, the next at line {self.items[1][0]})" if more else ""
        raise CharnnError(f"{self.source} line {line}: {problem}{tail}.")


def parse_plain(text: str, source: str = "<text>") -> list[Conversation]:
    """Conversations from plain text (see the module docstring)."""
    problems = _Problems(source)
    blocks: list[list[tuple[int, str]]] = [[]]
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            blocks[-1].append((number, line.strip()))
        elif blocks[-1]:
            blocks.append([])
    blocks = [b for b in blocks if b]
    named_per_block = [[_speaker(line) for _, line in block] for block in blocks]
    n_lines = sum(len(b) for b in blocks)
    # a one-line conversation is read as named when the file as a whole names its speakers
    file_named = sum(1 for named in named_per_block for s in named if s) * 2 > n_lines
    conversations = []
    for block, named in zip(blocks, named_per_block, strict=True):
        n_named = sum(1 for s in named if s)
        if n_named * 2 > len(block) and (n_named >= 2 or file_named):
            turns: list[str] = []
            last = None
            for (number, _), who in zip(block, named, strict=True):
                if who is None:
                    problems.add(number, "this conversation names its speakers (`Name: text`) but this line "
                                         "has no speaker; put each turn on one line")
                    continue
                name, said = who
                said = clean_turn(said)
                if not said:
                    problems.add(number, f"the turn of {name!r} is empty")
                    continue
                if name == last and turns:
                    turns[-1] += " " + said
                else:
                    turns.append(said)
                last = name
        else:
            turns = [clean_turn(line) for _, line in block]
        if turns:
            conversations.append(turns)
    problems.raise_if_any()
    return conversations


def parse_jsonl(text: str, source: str = "<text>") -> list[Conversation]:
    """Conversations from JSON lines, one ``{"messages": [...]}`` object per line."""
    problems = _Problems(source)
    conversations = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            problems.add(number, f"not valid JSON ({getattr(e, 'msg', e)} at column {getattr(e, 'colno', '?')})")
            continue
        messages = obj.get("messages") if isinstance(obj, dict) else None
        if not isinstance(messages, list):
            problems.add(number, 'expected an object with a "messages" list')
            continue
        turns: list[str] = []
        last = None
        for i, msg in enumerate(messages, start=1):
            if not isinstance(msg, dict) or not isinstance(msg.get("content"), str):
                problems.add(number, f'message {i} is not an object with a "content" string')
                break
            role = msg.get("role", msg.get("speaker"))
            if role is not None and not isinstance(role, str):
                problems.add(number, f'message {i} has a "role" that is not a string')
                break
            if role == "system":
                continue
            last = add_turn(turns, msg["content"], role, last)
        else:
            if turns:
                conversations.append(turns)
    problems.raise_if_any()
    return conversations


def detect_format(path: str | os.PathLike, text: str) -> str:
    """``jsonl`` for a .jsonl/.json file or one whose first line is a JSON object, else ``text``."""
    if Path(path).suffix.lower() in JSONL_SUFFIXES:
        return "jsonl"
    first = next((line for line in text.split("\n") if line.strip()), "")
    return "jsonl" if first.lstrip().startswith("{") and first.rstrip().endswith("}") else "text"


def parse_dialogues(text: str, source: str = "<text>", fmt: str = "text") -> list[Conversation]:
    return parse_jsonl(text, source) if fmt == "jsonl" else parse_plain(text, source)


def read_dialogues(path: str | os.PathLike, encoding: str = "utf-8", errors: str = "strict") -> list[Conversation]:
    """The conversations of a dialogue file; a CharnnError if there are none or a line is malformed."""
    from charnn.text.corpus import read_text

    text = read_text(path, encoding, errors)
    conversations = parse_dialogues(text, str(path), detect_format(path, text))
    if not conversations:
        raise CharnnError(f"{path} holds no dialogue: give one turn per line, conversations separated by "
                          f"blank lines (or JSON lines with a \"messages\" list).")
    return conversations


def make_examples(conversations: Iterable[Conversation], context_turns: int) -> list[Example]:
    """Every turn as a reply to the (up to) ``context_turns`` turns before it; the first has none."""
    examples: list[Example] = []
    for turns in conversations:
        for i, reply in enumerate(turns):
            examples.append((tuple(turns[max(0, i - context_turns) : i]), reply))
    return examples


def split_conversations(conversations: Sequence[Conversation], val_fraction: float) -> tuple[list, list]:
    """Whole conversations: the last ``val_fraction`` of them are held out (as the LM's contiguous split)."""
    n_val = int(round(len(conversations) * val_fraction))
    if val_fraction > 0 and len(conversations) >= 2:
        n_val = max(1, n_val)
    n_val = min(n_val, len(conversations) - 1)
    cut = len(conversations) - n_val
    return list(conversations[:cut]), list(conversations[cut:])


def format_plain(conversations: Iterable[Conversation], speakers: Sequence[str] = ()) -> str:
    """Plain dialogue text; with ``speakers`` (e.g. ``("A", "B")``) turns alternate named prefixes."""
    out = []
    for turns in conversations:
        cleaned = [t for t in (clean_turn(t) for t in turns) if t]
        lines = [f"{speakers[i % len(speakers)]}: {t}" if speakers else t for i, t in enumerate(cleaned)]
        if lines:
            out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"
