"""``charnn export``: a small inference-only copy of a model."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from charnn.commands import checkpoint_arg


def cmd_export(args) -> int:
    from charnn.runtime.checkpoint import export_checkpoint, summary_path
    from charnn.runtime.runs import resolve_checkpoint

    src = Path(resolve_checkpoint(checkpoint_arg(args.checkpoint)))
    out = export_checkpoint(src, args.out, half=not args.fp32)
    print(f"charnn: wrote {out} ({os.path.getsize(out) / 2**20:.1f} MiB) and its summary "
          f"{summary_path(out).name}", file=sys.stderr)
    if carried := _carry_chat_scores(src, out):
        print(f"charnn: carried {', '.join(carried)} from the run's `charnn eval` into the summary (measured on "
              "the run's own weights; `charnn eval` the export to re-measure it)", file=sys.stderr)
    return 0


def _carry_chat_scores(src: Path, out: Path) -> list[str]:
    """A chat model's headline figures (reply bits/char, hits@1), recorded in its run's run.json by
    `charnn eval`, copied into the export's summary so `charnn models` still shows them."""
    from charnn.runtime.runs import CHAT_SCORES, read_record, record_scores, run_checkpoint

    if run_checkpoint(src.parent) != src or (record := read_record(src.parent)) is None:
        return []
    scores = {key: value for key in CHAT_SCORES if (value := getattr(record, key)) is not None}
    return sorted(scores) if scores and record_scores(out, scores) is not None else []
