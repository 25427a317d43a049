"""The corpus as a cached integer array, split and cut into truncated-BPTT batches.

Encoding happens once per (corpus content, tokenizer settings): the ids go to a
raw binary file in the cache directory and are memory-mapped from then on, so
memory grows with the token count (2 or 4 bytes each), never with Python
objects, and a corpus larger than RAM still trains.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from charnn import paths
from charnn.config import TokenizerConfig
from charnn.errors import CharnnError
from charnn.text.corpus import CorpusInfo, check_readable, hash_file, iter_text
from charnn.text.tokenizers import (
    CharTokenizer,
    SentencePieceTokenizer,
    Tokenizer,
    tokenizer_from_state,
)

CACHE_VERSION = 1
MAX_LINE_CARRY = 1 << 20  # characters of an unfinished line held back between chunks


@dataclass
class TokenizedCorpus:
    info: CorpusInfo
    tokenizer: Tokenizer
    tokens: np.ndarray  # memory-mapped, read-only

    def split(self, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """Contiguous split: the last ``val_fraction`` of the tokens is validation."""
        n = len(self.tokens)
        n_val = int(n * val_fraction)
        return self.tokens[: n - n_val], self.tokens[n - n_val :]


def _cache_key(info: CorpusInfo, tok: TokenizerConfig, specials: Sequence[str], encoding: str, errors: str) -> str:
    parts = [info.sha256[:24], tok.kind, str(tok.vocab_size), encoding, errors, *specials]
    return "-".join(p.replace("/", "_") for p in parts)


def fit_tokenizer(path: Path, tok: TokenizerConfig, encoding: str, errors: str, specials: Sequence[str] = ()) -> Tokenizer:
    texts = iter_text(path, encoding, errors)
    if tok.kind == "char":
        tokenizer = CharTokenizer.fit(texts, specials)
        if not tokenizer.chars.strip():
            raise CharnnError(f"Corpus {path} holds only whitespace; it needs some text to learn from.")
        return tokenizer
    return SentencePieceTokenizer.fit(texts, tok.kind, tok.vocab_size, specials)  # size checked in presets


def check_shares(batch_size: int, world: int) -> None:
    """Each of ``world`` processes reads an equal share of the batch (LM streams and chat examples alike)."""
    if batch_size % world:
        raise CharnnError(f"--batch-size {batch_size} must be divisible by the {world} processes.")


def _encode_to_file(path: Path, tokenizer: Tokenizer, out: Path, encoding: str, errors: str) -> int:
    dtype = np.uint16 if tokenizer.vocab_size <= 65535 else np.uint32
    n = 0
    tail = ""
    with open(out, "wb") as f:
        for chunk in iter_text(path, encoding, errors):
            text = tail + chunk
            # keep an unfinished line for the next chunk so subwords never straddle a cut
            cut = text.rfind("\n") + 1 if tokenizer.kind != "char" else len(text)
            if cut == 0 and len(text) > MAX_LINE_CARRY:  # one enormous line: cut at a space instead
                cut = text.rfind(" ") if text.rfind(" ") > 0 else len(text)
            text, tail = text[:cut], text[cut:]
            ids = tokenizer.encode_array(text).astype(dtype)
            f.write(ids.tobytes())
            n += len(ids)
        if tail:
            ids = tokenizer.encode_array(tail).astype(dtype)
            f.write(ids.tobytes())
            n += len(ids)
    return n


def load_corpus(
    path: str | os.PathLike,
    tok: TokenizerConfig | None = None,
    encoding: str = "utf-8",
    errors: str = "strict",
    specials: Sequence[str] = (),
    tokenizer: Tokenizer | None = None,
) -> TokenizedCorpus:
    """Read, validate, tokenize and cache a corpus; a second call maps the cached ids.

    With ``tokenizer`` given (resuming, evaluating), the text is encoded with it
    instead of fitting a new one.
    """
    tok = tok or TokenizerConfig()
    p = check_readable(path)
    info = hash_file(p)
    key = _cache_key(info, tok, specials, encoding, errors)
    if tokenizer is not None:
        import hashlib

        state = json.dumps({k: (v.hex() if isinstance(v, bytes) else v) for k, v in tokenizer.to_state().items()})
        key = info.sha256[:24] + "-fixed-" + hashlib.sha256(state.encode()).hexdigest()[:16]
    root = paths.cache_dir() / "tokens"
    entry = root / key
    meta_path = entry / "meta.json"
    if meta_path.exists():
        try:
            return _open_entry(entry, info)
        except (OSError, ValueError, KeyError):
            shutil.rmtree(entry, ignore_errors=True)  # a damaged cache entry is rebuilt
    if tokenizer is None:
        tokenizer = fit_tokenizer(p, tok, encoding, errors, specials)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".building-"))
    try:
        n = _encode_to_file(p, tokenizer, tmp / "tokens.bin", encoding, errors)
        if n == 0:
            raise CharnnError(f"Corpus {p} has no text after decoding.")
        state = tokenizer.to_state()
        if "model" in state:
            (tmp / "tokenizer.model").write_bytes(state.pop("model"))
        meta = {
            "version": CACHE_VERSION,
            "n_tokens": n,
            "dtype": "uint16" if tokenizer.vocab_size <= 65535 else "uint32",
            "tokenizer": state,
            "source": str(p),
        }
        (tmp / "meta.json").write_text(json.dumps(meta))
        try:
            os.replace(tmp, entry)
        except OSError:  # another process built it first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _open_entry(entry, info, tokenizer)


def _open_entry(entry: Path, info: CorpusInfo, tokenizer: Tokenizer | None = None) -> TokenizedCorpus:
    meta = json.loads((entry / "meta.json").read_text())
    if meta.get("version") != CACHE_VERSION:
        raise ValueError("old cache entry")
    if tokenizer is None:
        state = dict(meta["tokenizer"])
        if state["kind"] != "char":
            state["model"] = (entry / "tokenizer.model").read_bytes()
        tokenizer = tokenizer_from_state(state)
    tokens = np.memmap(entry / "tokens.bin", dtype=meta["dtype"], mode="r", shape=(meta["n_tokens"],))
    return TokenizedCorpus(info=info, tokenizer=tokenizer, tokens=tokens)


class StreamBatcher:
    """B parallel contiguous streams cut into windows of T tokens (truncated BPTT).

    Stream b reads ``tokens[b*L : (b+1)*L + 1]``; window w of it is the inputs
    ``[w*T, (w+1)*T)`` and the targets one token later. Consecutive windows of a
    stream are contiguous, so the model's hidden state is carried across them;
    it is reset when an epoch wraps around. Under data parallelism each rank
    takes its own slice of the streams.
    """

    def __init__(self, tokens: np.ndarray, batch_size: int, seq_len: int, rank: int = 0, world: int = 1):
        check_shares(batch_size, world)
        self.tokens = tokens
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.stream_len = (len(tokens) - 1) // batch_size
        self.windows = self.stream_len // seq_len
        if self.windows < 1:
            raise CharnnError(
                f"The text is too short for --batch-size {batch_size} and --seq-len {seq_len} "
                f"({len(tokens)} tokens); lower them or use more text."
            )
        local = batch_size // world
        starts = (np.arange(rank * local, (rank + 1) * local) * self.stream_len)[:, None]
        self._index = starts + np.arange(seq_len + 1)[None, :]

    def window(self, step: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """Inputs, targets (int64, shape local_B x T) and whether the state must reset."""
        w = step % self.windows
        block = np.asarray(self.tokens[self._index + w * self.seq_len], dtype=np.int64)
        return block[:, :-1], block[:, 1:], w == 0

    def epoch(self, step: int) -> float:
        return step / self.windows


def fit_batch_shape(n_tokens: int, batch_size: int, seq_len: int) -> tuple[int, int, str | None]:
    """Shrink B (then T) so a short corpus still gives at least one window; says what changed."""
    b, t = batch_size, seq_len
    while b > 1 and (n_tokens - 1) // b < t:
        b //= 2
    while t > 8 and (n_tokens - 1) // b < t:
        t //= 2
    if (n_tokens - 1) // b < t:
        raise CharnnError(
            f"The training text is too short ({n_tokens} tokens) to train on; give at least a few hundred characters."
        )
    note = None
    if (b, t) != (batch_size, seq_len):
        note = f"Corpus is short: using --batch-size {b} --seq-len {t} so that it fits."
    return b, t, note
