"""``charnn tui``: open the terminal UI."""

from __future__ import annotations


def cmd_tui(args) -> int:
    from charnn.tui import run_tui

    return run_tui(run=args.run)
