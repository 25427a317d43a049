"""Where charnn keeps runs, caches and config (platformdirs; overridable by environment)."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir, user_data_dir

APP = "charnn"


def data_dir() -> Path:
    """Root for trained runs. ``CHARNN_HOME`` overrides it (tests use this)."""
    home = os.environ.get("CHARNN_HOME")
    return Path(home) if home else Path(user_data_dir(APP, appauthor=False))


def runs_dir() -> Path:
    return data_dir() / "runs"


def cache_dir() -> Path:
    """Token-array cache, keyed by content hash. ``CHARNN_CACHE`` overrides it."""
    cache = os.environ.get("CHARNN_CACHE")
    if cache:
        return Path(cache)
    home = os.environ.get("CHARNN_HOME")
    return Path(home) / "cache" if home else Path(user_cache_dir(APP, appauthor=False))


def bundled_checkpoints_dir() -> Path:
    """The small pretrained models: inside an installed package, else the checkout's ``checkpoints/``."""
    package = Path(__file__).resolve().parent
    inside = package / "checkpoints"
    return inside if inside.is_dir() else package.parent / "checkpoints"
