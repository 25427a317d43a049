"""Where built-in corpora are kept once gathered, and how they are written (atomically)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from charnn import fileio, paths


def corpora_cache_dir() -> Path:
    """``<cache>/corpora``: built or downloaded corpus files live here."""
    return paths.cache_dir() / "corpora"


def write_atomic(path: Path, chunks: Iterable[bytes]) -> int:
    """Write ``chunks`` to a temporary file beside ``path``, fsync, then rename over it.

    A crash or a second process never leaves a half-written corpus under the final name.
    Returns the number of bytes written.
    """
    n = 0

    def write(f) -> None:
        nonlocal n
        for chunk in chunks:
            f.write(chunk)
            n += len(chunk)

    fileio.write_atomic(path, write)
    return n


def write_json_atomic(path: Path, data: dict) -> None:
    write_atomic(path, [json.dumps(data, indent=2, sort_keys=True).encode("utf-8")])


def read_json(path: Path) -> dict | None:
    """The JSON object in ``path``, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def fmt_size(n: int) -> str:
    """1115394 -> '1.1 MB' (decimal units, as file managers show them)."""
    if n < 1000:
        return f"{n} B"
    for unit in ("kB", "MB", "GB"):
        n /= 1000
        if n < 1000 or unit == "GB":
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")
