"""Tokenizers: characters, or SentencePiece subwords (BPE / unigram).

Both can be rebuilt from a plain dict (``to_state``/``tokenizer_from_state``)
so a checkpoint carries its tokenizer and needs nothing else to sample.
Both expose ``token_bytes`` (the UTF-8 bytes each id stands for) so a stream of
ids can be turned into text piece by piece, and ``char_lengths`` (characters
per id) so a subword loss can be reported per character.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from charnn.errors import CharnnError

SPM_PIECE_SPACE = "\u2581"  # SentencePiece's visible space
_MAX_SPM_SENTENCE = 4000  # characters; SentencePiece skips longer training sentences


class CharTokenizer:
    """One id per distinct character; optional named specials take the first ids."""

    kind = "char"

    def __init__(self, chars: str, specials: Sequence[str] = ()):
        self.specials = tuple(specials)
        self.chars = chars
        self.itos = list(self.specials) + list(chars)
        self.vocab_size = len(self.itos)
        self._lut: np.ndarray | None = None
        self.token_bytes = [b"" for _ in self.specials] + [c.encode("utf-8") for c in chars]

    @classmethod
    def fit(cls, texts: Iterable[str], specials: Sequence[str] = ()) -> CharTokenizer:
        seen: set[str] = set()
        for chunk in texts:
            seen.update(chunk)
        return cls("".join(sorted(seen)), specials)

    def special_id(self, name: str) -> int:
        return self.specials.index(name)

    @property
    def lut(self) -> np.ndarray:
        if self._lut is None:
            lut = np.full(0x110000, -1, dtype=np.int32)
            codes = np.array([ord(c) for c in self.chars], dtype=np.int64)
            lut[codes] = np.arange(len(self.specials), self.vocab_size, dtype=np.int32)
            self._lut = lut
        return self._lut

    def unknown_chars(self, text: str) -> list[str]:
        known = set(self.chars)
        return sorted({c for c in text if c not in known})

    def encode_array(self, text: str) -> np.ndarray:
        """Ids as int32; raises CharnnError naming any characters outside the vocabulary."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        ids = self.lut[codes]
        if (ids < 0).any():
            bad = self.unknown_chars(text)
            shown = ", ".join(repr(c) for c in bad[:8]) + (" …" if len(bad) > 8 else "")
            raise CharnnError(
                f"The text has {len(bad)} character(s) this model never saw in training: {shown}."
            )
        return ids

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()

    def decode(self, ids: Iterable[int]) -> str:
        n = len(self.specials)
        return "".join(self.itos[i] for i in ids if i >= n)

    def char_lengths(self) -> np.ndarray:
        lengths = np.ones(self.vocab_size, dtype=np.float64)
        lengths[: len(self.specials)] = 0.0
        return lengths

    def to_state(self) -> dict:
        return {"kind": "char", "chars": self.chars, "specials": list(self.specials)}


class SentencePieceTokenizer:
    """A SentencePiece model kept as bytes; byte fallback means any text encodes."""

    def __init__(self, model_bytes: bytes, kind: str = "bpe", specials: Sequence[str] = ()):
        import sentencepiece as spm

        self.kind = kind
        self.model_bytes = bytes(model_bytes)
        self.specials = tuple(specials)
        self.sp = spm.SentencePieceProcessor(model_proto=self.model_bytes)
        self.vocab_size = self.sp.get_piece_size()
        self.token_bytes = [self._piece_bytes(i) for i in range(self.vocab_size)]

    def _piece_bytes(self, i: int) -> bytes:
        sp = self.sp
        if sp.is_control(i) or sp.is_unknown(i):
            return b""
        piece = sp.id_to_piece(i)
        if sp.is_byte(i):
            return bytes([int(piece[3:5], 16)])  # "<0xAB>"
        if piece in self.specials:
            return b""
        return piece.replace(SPM_PIECE_SPACE, " ").encode("utf-8")

    @classmethod
    def fit(
        cls,
        texts: Iterable[str],
        kind: str,
        vocab_size: int,
        specials: Sequence[str] = (),
        max_sentences: int = 2_000_000,
    ) -> SentencePieceTokenizer:
        import sentencepiece as spm

        if kind not in ("bpe", "unigram"):
            raise CharnnError(f"Unknown subword tokenizer {kind!r}; use bpe or unigram.")
        model = io.BytesIO()
        try:
            with _quiet_stderr():
                spm.SentencePieceTrainer.train(
                    sentence_iterator=_training_sentences(texts),
                    model_writer=model,
                    model_type=kind,
                    vocab_size=vocab_size,
                    character_coverage=1.0,
                    byte_fallback=True,
                    normalization_rule_name="identity",
                    remove_extra_whitespaces=False,
                    add_dummy_prefix=False,
                    allow_whitespace_only_pieces=True,
                    split_digits=True,
                    user_defined_symbols=["\n", *specials],
                    input_sentence_size=max_sentences,
                    shuffle_input_sentence=True,
                    hard_vocab_limit=True,
                    num_threads=max(1, min(os.cpu_count() or 1, 8)),
                    minloglevel=2,
                )
        except RuntimeError as e:
            raise CharnnError(_explain_spm_error(str(e), vocab_size)) from None
        return cls(model.getvalue(), kind, specials)

    def special_id(self, name: str) -> int:
        i = self.sp.piece_to_id(name)
        if name not in self.specials or i == self.sp.unk_id():
            raise KeyError(name)
        return i

    def unknown_chars(self, text: str) -> list[str]:
        return []  # byte fallback: nothing is unknown

    def encode_array(self, text: str) -> np.ndarray:
        ids: list[int] = []
        for line in text.splitlines(keepends=True):
            ids.extend(self.sp.encode(line))
        return np.asarray(ids, dtype=np.int32)

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()

    def decode(self, ids: Iterable[int]) -> str:
        return b"".join(self.token_bytes[i] for i in ids).decode("utf-8", errors="replace")

    def char_lengths(self) -> np.ndarray:
        """Characters per id; a byte-fallback piece counts one per UTF-8 lead byte."""
        out = np.zeros(self.vocab_size, dtype=np.float64)
        for i, b in enumerate(self.token_bytes):
            out[i] = sum(1 for x in b if (x & 0xC0) != 0x80)
        return out

    def to_state(self) -> dict:
        return {"kind": self.kind, "model": self.model_bytes, "specials": list(self.specials)}


Tokenizer = CharTokenizer | SentencePieceTokenizer


def tokenizer_from_state(state: dict) -> Tokenizer:
    kind = state.get("kind")
    specials = state.get("specials", [])
    if kind == "char":
        return CharTokenizer(state["chars"], specials)
    if kind in ("bpe", "unigram"):
        return SentencePieceTokenizer(state["model"], kind, specials)
    raise CharnnError(f"The checkpoint has an unknown tokenizer kind {kind!r}.")


def _explain_spm_error(msg: str, vocab_size: int) -> str:
    import re

    small = re.search(r"smaller than required_chars\. (\d+) vs (\d+)", msg)
    if small:
        return (f"--vocab-size {vocab_size} is too small for this text: it needs at least {small.group(2)} "
                f"(256 byte pieces plus the text's distinct characters).")
    large = re.search(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)", msg)
    if large:
        return f"--vocab-size {vocab_size} is larger than this text supports; use at most {large.group(2)}."
    return f"SentencePiece could not train on this corpus: {msg.strip().splitlines()[-1]}"


def _training_sentences(texts: Iterable[str]) -> Iterator[str]:
    """Lines of the corpus, long ones cut, so SentencePiece sees all of the text."""
    tail = ""
    for chunk in texts:
        lines = (tail + chunk).split("\n")
        tail = lines.pop()
        for line in lines:
            for i in range(0, max(len(line), 1), _MAX_SPM_SENTENCE):
                piece = line[i : i + _MAX_SPM_SENTENCE]
                if piece:
                    yield piece
        whole = len(tail) // _MAX_SPM_SENTENCE * _MAX_SPM_SENTENCE
        for i in range(0, whole, _MAX_SPM_SENTENCE):  # one enormous line must not pile up in memory
            yield tail[i : i + _MAX_SPM_SENTENCE]
        tail = tail[whole:]
    for i in range(0, len(tail), _MAX_SPM_SENTENCE):
        yield tail[i : i + _MAX_SPM_SENTENCE]


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """SentencePiece logs from C++ straight to fd 2; keep that off the user's terminal."""
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(fd, 2)
            os.close(fd)
