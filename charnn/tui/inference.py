"""What the Generate and Chat screens share: temperature keys, streaming cadence, threads, the heap."""

from __future__ import annotations

import gc
import os

TEMP_STEP = 0.1
MAX_TEMP = 3.0
FLUSH_S = 0.04  # batch streamed pieces: ~25 updates a second is smooth and cheap


def cpu_threads_for_ui() -> int:
    """Leave half the cores to a training child running beside us."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, cores // 2)


def freeze_heap() -> None:
    """Move everything alive now (textual, torch, a loaded model) out of the collector's sight.

    Full garbage collections over that long-lived heap paused the UI for 100-250 ms
    while text streamed in; after this they only scan objects made since.
    """
    gc.freeze()
