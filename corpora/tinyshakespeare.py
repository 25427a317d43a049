"""``tinyshakespeare``: Karpathy's char-rnn corpus (about 40,000 lines of Shakespeare, 1.1 MB).

Where the text comes from, first match wins:

1. ``CHARNN_TINYSHAKESPEARE=PATH``: a copy the user already has (used as is);
2. ``<cache>/corpora/tinyshakespeare.txt``: downloaded earlier;
3. the canonical public address ``URL``, downloaded once, kept only if its
   SHA-256 matches ``SHA256``, and written atomically into the cache.

Offline, the error is one sentence saying how to get the file. No text is
committed to the repository.
"""

from __future__ import annotations

import hashlib
import http.client
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.request import urlopen

from charnn.corpora.cache import corpora_cache_dir, write_atomic
from charnn.errors import CharnnError

NAME = "tinyshakespeare"
URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
SIZE = 1_115_394
ENV = "CHARNN_TINYSHAKESPEARE"
TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Located:
    path: Path
    origin: str  # "env" or "cache"


def cached_path() -> Path:
    return corpora_cache_dir() / f"{NAME}.txt"


def how_to_get() -> str:
    return f"download {URL} and set {ENV} to the file's path (or save it as {cached_path()})"


def locate() -> Located | None:
    """The copy on this machine (environment variable, then cache), or None; never the network."""
    env = os.environ.get(ENV)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise CharnnError(f"{ENV} is set to {p}, which is not a file; point it at a copy of "
                              f"tinyshakespeare's input.txt or unset it.")
        return Located(p, "env")
    p = cached_path()
    try:
        if p.stat().st_size == SIZE:  # written only after its checksum matched, so the size suffices
            return Located(p, "cache")
    except OSError:
        pass
    return None


def download(timeout: float = TIMEOUT_S) -> Path:
    """Fetch ``URL``, check its SHA-256, and store it in the cache; a CharnnError if any step fails."""
    try:
        with urlopen(URL, timeout=timeout) as response:
            data = response.read(SIZE + 1)
    except (OSError, ValueError, http.client.HTTPException) as e:  # URLError, timeouts, refused, reset
        reason = getattr(e, "reason", None) or e
        raise CharnnError(f"tinyshakespeare is not on this machine and could not be downloaded ({reason}); "
                          f"{how_to_get()}.") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise CharnnError(f"The tinyshakespeare download from {URL} did not match its expected SHA-256 "
                          f"checksum ({len(data)} bytes, sha256 {digest[:12]}…), so it was not kept; try again "
                          f"later, or {how_to_get()}.")
    path = cached_path()
    write_atomic(path, [data])
    return path


def corpus_file(allow_download: bool = True, notify=None) -> Path:
    """The tinyshakespeare text file: a local copy, or a verified download when allowed."""
    found = locate()
    if found:
        return found.path
    if not allow_download:
        raise CharnnError(f"tinyshakespeare is not on this machine; {how_to_get()}.")
    if notify:
        notify(f"downloading tinyshakespeare (1.1 MB) from {URL}")
    return download()
