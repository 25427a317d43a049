"""Reading a user's corpus: validate it, then stream it as text chunks.

A corpus can be larger than memory, so nothing here holds the whole file:
``scan_corpus`` walks it once (hash, character set, counts) and
``iter_text`` yields decoded chunks. Every problem a user can cause becomes a
``CharnnError`` with one sentence saying what is wrong and what to do.
"""

from __future__ import annotations

import codecs
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from charnn.errors import CharnnError

CHUNK_BYTES = 1 << 22  # 4 MiB


@dataclass
class CorpusInfo:
    path: Path
    n_bytes: int
    sha256: str


def check_readable(path: str | os.PathLike) -> Path:
    """The path as a readable, non-empty regular file, or a CharnnError saying why not."""
    p = Path(path).expanduser()
    if not p.exists():
        raise CharnnError(f"Corpus not found: {p} does not exist.")
    if p.is_dir():
        raise CharnnError(f"{p} is a directory; give a text file (or a built-in corpus name).")
    if not os.access(p, os.R_OK):
        raise CharnnError(f"Cannot read {p}: permission denied.")
    if p.stat().st_size == 0:
        raise CharnnError(f"Corpus {p} is empty; it needs some text to learn from.")
    return p


def hash_file(path: Path) -> CorpusInfo:
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            h.update(chunk)
            n += len(chunk)
    return CorpusInfo(path=path, n_bytes=n, sha256=h.hexdigest())


def _sniff(head: bytes, path: Path, encoding: str) -> None:
    if codecs.lookup(encoding).name != "utf-8":
        return
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise CharnnError(
            f"{path} looks like UTF-16 text; convert it to UTF-8 or pass --encoding utf-16."
        )
    if b"\x00" in head:
        raise CharnnError(f"{path} looks like a binary file (it contains NUL bytes), not text.")


def iter_text(
    path: Path, encoding: str = "utf-8", errors: str = "strict", chunk_bytes: int = CHUNK_BYTES
) -> Iterator[str]:
    """Decoded text in chunks, BOM stripped and line ends normalised to ``\\n``.

    Invalid bytes raise a CharnnError naming the line and byte offset.
    """
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise CharnnError(f"Unknown text encoding {encoding!r}.") from None
    name = "utf-8-sig" if codec.name == "utf-8" else codec.name
    try:
        decoder = codecs.getincrementaldecoder(name)(errors)
    except LookupError:
        raise CharnnError(f"Unknown --errors mode {errors!r}; use strict, replace or ignore.") from None
    offset = 0
    carry_cr = False
    lines_before = 0
    try:
        f = open(path, "rb")
    except OSError as e:
        raise CharnnError(f"Cannot read {path}: {e.strerror}.") from None
    with f:
        first = True
        while True:
            raw = f.read(chunk_bytes)
            final = not raw
            if first:
                _sniff(raw[:65536], path, encoding)
                first = False
            try:
                pending = len(decoder.getstate()[0])
                text = decoder.decode(raw, final=final)
            except UnicodeDecodeError as e:
                where = offset - pending + e.start
                line = lines_before + raw[: max(0, e.start - pending)].count(b"\n") + 1
                raise CharnnError(
                    f"{path} is not valid {encoding.upper()}: bad byte at line {line} "
                    f"(byte offset {where}); pass --errors replace to substitute such bytes, "
                    f"or --encoding if the file uses another encoding."
                ) from None
            if encoding.lower().replace("_", "-") in ("utf-8", "utf8") and "\x00" in text:
                raise CharnnError(f"{path} looks like a binary file (it contains NUL bytes), not text.")
            offset += len(raw)
            lines_before += raw.count(b"\n")
            if carry_cr:
                text = "\r" + text
            carry_cr = text.endswith("\r") and not final
            if carry_cr:
                text = text[:-1]
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            if text:
                yield text
            if final:
                return


def read_text(path: str | os.PathLike, encoding: str = "utf-8", errors: str = "strict") -> str:
    """The whole corpus as one string (for small files: prompts, dialogues, tests)."""
    return "".join(iter_text(check_readable(path), encoding, errors))
