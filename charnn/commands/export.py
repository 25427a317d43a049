"""``charnn export``: a small inference-only copy of a model."""

from __future__ import annotations

import os
import sys

from charnn.commands import checkpoint_arg


def cmd_export(args) -> int:
    from charnn.runtime.checkpoint import export_checkpoint, summary_path
    from charnn.runtime.runs import resolve_checkpoint

    out = export_checkpoint(resolve_checkpoint(checkpoint_arg(args.checkpoint)), args.out, half=not args.fp32)
    print(f"charnn: wrote {out} ({os.path.getsize(out) / 2**20:.1f} MiB) and its summary "
          f"{summary_path(out).name}", file=sys.stderr)
    return 0
