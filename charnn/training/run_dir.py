"""Where a new run is written, and a check that it can be, before any training."""

from __future__ import annotations

import errno
import re
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from charnn import paths
from charnn.errors import CharnnError


def new_run_dir(corpus: str, name: str | None, out: str | None) -> Path:
    if out:
        return Path(out).expanduser()
    stem = name or re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(corpus).stem or "run").strip("-") or "run"
    if name:
        return paths.runs_dir() / stem
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    d = paths.runs_dir() / f"{stem}-{stamp}"
    i = 2
    while d.exists():
        d = paths.runs_dir() / f"{stem}-{stamp}-{i}"
        i += 1
    return d


def check_writable(run_dir: Path) -> None:
    """Fail before training, not at the first save, when the run directory cannot be written."""
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=run_dir, prefix=".write-test-"):
            pass
    except OSError as e:
        if created:
            shutil.rmtree(run_dir, ignore_errors=True)
        why = "the disk is full" if e.errno == errno.ENOSPC else "it is read-only or not writable"
        raise CharnnError(f"Cannot write to the run directory {run_dir}: {why}; pass --out with a "
                          f"writable place.") from None
