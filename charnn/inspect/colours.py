"""Colours for a value per character, shared by the terminal and the HTML page (no UI library)."""

from __future__ import annotations

import numpy as np

SURPRISE_TOP = 8.0  # bits at which the surprise colour is fully red


def surprise_rgb(bits: np.ndarray) -> np.ndarray:
    """(n, 3) uint8: dark for bits the model expected, through orange to red for a surprise."""
    t = np.clip(np.nan_to_num(bits, nan=0.0) / SURPRISE_TOP, 0.0, 1.0)[:, None]
    low, mid, high = np.array([30, 30, 40]), np.array([200, 120, 0]), np.array([230, 20, 20])
    rgb = np.where(t < 0.5, low + (mid - low) * (t / 0.5), mid + (high - mid) * ((t - 0.5) / 0.5))
    return rgb.astype(np.uint8)


def signed_rgb(values: np.ndarray) -> np.ndarray:
    """(n, 3) uint8: blue for negative, red for positive, scaled by the largest magnitude."""
    v = np.nan_to_num(values, nan=0.0)
    scale = max(float(np.abs(v).max()) if len(v) else 0.0, 1e-9)
    t = (v / scale)[:, None]
    base, red, blue = np.array([30, 30, 40]), np.array([220, 40, 40]), np.array([40, 90, 230])
    rgb = np.where(t >= 0, base + (red - base) * t, base + (blue - base) * (-t))
    return rgb.astype(np.uint8)


def runs(text: str, rgb: np.ndarray) -> list[tuple[str, str]]:
    """``text`` cut where its colour changes: ``[(piece, "#rrggbb"), ...]``."""
    if not text:
        return []
    packed = (rgb[:, 0].astype(np.int64) << 16) | (rgb[:, 1].astype(np.int64) << 8) | rgb[:, 2]
    cuts = np.flatnonzero(np.diff(packed)) + 1
    bounds = [0, *cuts.tolist(), len(text)]
    return [(text[a:b], f"#{int(packed[a]):06x}") for a, b in zip(bounds, bounds[1:], strict=False)]
