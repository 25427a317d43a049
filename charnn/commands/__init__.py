"""What each ``charnn`` command does, one module per command; ``charnn.cli`` parses the flags and
dispatches here. Nothing heavy is imported at module level, so ``charnn --help`` stays fast."""

from __future__ import annotations

import sys


def checkpoint_arg(spec: str | None) -> str | None:
    """The file a --checkpoint (or eval's model) names; a run of the user's that hides a built-in
    model of the same name is used, with one line saying so."""
    if not spec:
        return None  # the latest model of the command's kind
    from charnn.runtime.runs import find_model

    match = find_model(spec)
    if match.notice:
        print(f"charnn: {match.notice}", file=sys.stderr)
    return str(match.path)
