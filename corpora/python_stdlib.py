"""``python-stdlib``: the running Python's standard-library source, gathered into one text file.

The classic "generate source code" char-RNN demo, with nothing to download: the
``.py`` files under ``sysconfig``'s stdlib directory, walked in sorted path
order, each preceded by a ``# ---- path ----`` line, until the next whole file
would pass ``CAP_BYTES`` (4 MB). Tests, bundled data (``pydoc_data``), codec
tables (``encodings``) and installed packages are left out. The result is
cached under ``<cache>/corpora/`` with a small manifest beside it, and is
rebuilt only when the Python, its stdlib directory, the cap or the format changes.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from charnn.corpora.cache import corpora_cache_dir, read_json, write_atomic, write_json_atomic
from charnn.errors import CharnnError

NAME = "python-stdlib"
CAP_BYTES = 4_000_000  # a few MB: enough for a char-RNN to learn Python's look, small enough to tokenize at once
FORMAT = 1  # bump when the gathering rules change, so cached files are rebuilt
SKIP_DIRS = frozenset({
    "test", "tests", "idle_test", "__pycache__", "site-packages", "dist-packages",
    "pydoc_data", "encodings", "__phello__", "lib-dynload",
})


@dataclass(frozen=True)
class StdlibCorpus:
    path: Path
    n_files: int
    n_bytes: int
    sha256: str


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def cached_path() -> Path:
    return corpora_cache_dir() / f"{NAME}-{platform.python_version()}.txt"


def source_files(root: Path) -> list[Path]:
    """Every ``.py`` file under ``root`` outside SKIP_DIRS, in sorted (POSIX) path order."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(("config-", "."))]
        for name in filenames:
            if name.endswith(".py"):
                found.append(Path(dirpath) / name)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _pieces(root: Path, cap: int) -> Iterator[tuple[str, bytes]]:
    """(relative path, header + source) for each readable UTF-8 source file, stopping at the cap."""
    total = 0
    for path in source_files(root):
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # unreadable or not UTF-8: not worth failing the whole corpus for
        if "\x00" in text:
            continue
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if not text.strip():
            continue
        rel = path.relative_to(root).as_posix()
        piece = f"# ---- {rel} ----\n{text.rstrip()}\n\n".encode()
        if total + len(piece) > cap:
            return
        total += len(piece)
        yield rel, piece


def _manifest_key(root: Path, cap: int) -> dict:
    return {"format": FORMAT, "python": platform.python_version(), "stdlib": str(root), "cap": cap}


def cached(root: Path | None = None, cap: int = CAP_BYTES) -> StdlibCorpus | None:
    """The cached corpus if it is there and was built by these rules from this stdlib, else None."""
    root = root or stdlib_dir()
    path = cached_path()
    manifest = read_json(path.with_suffix(".json"))
    if not manifest or any(manifest.get(k) != v for k, v in _manifest_key(root, cap).items()):
        return None
    try:
        if path.stat().st_size != manifest.get("bytes"):
            return None
    except OSError:
        return None
    return StdlibCorpus(path, int(manifest.get("files", 0)), int(manifest["bytes"]), str(manifest.get("sha256", "")))


def build(root: Path | None = None, cap: int = CAP_BYTES) -> StdlibCorpus:
    """Gather the sources into the cache file (atomically) and write its manifest."""
    root = root or stdlib_dir()
    if not root.is_dir():
        raise CharnnError(f"This Python's standard-library sources are not at {root}, so python-stdlib "
                          f"cannot be built here; pick another corpus (see `charnn corpora`).")
    path = cached_path()
    digest = hashlib.sha256()
    files: list[str] = []

    def chunks() -> Iterator[bytes]:
        for rel, piece in _pieces(root, cap):
            files.append(rel)
            digest.update(piece)
            yield piece

    n_bytes = write_atomic(path, chunks())
    if not files:
        path.unlink(missing_ok=True)
        raise CharnnError(f"No readable Python source files were found under {root}, so python-stdlib "
                          f"cannot be built here; pick another corpus (see `charnn corpora`).")
    write_json_atomic(path.with_suffix(".json"), {
        **_manifest_key(root, cap), "files": len(files), "bytes": n_bytes, "sha256": digest.hexdigest(),
        "first": files[0], "last": files[-1],
    })
    return StdlibCorpus(path, len(files), n_bytes, digest.hexdigest())


def corpus_file(root: Path | None = None, cap: int = CAP_BYTES) -> Path:
    """The python-stdlib text file, built on first use (well under a second) and cached after."""
    hit = cached(root, cap)
    return hit.path if hit else build(root, cap).path
