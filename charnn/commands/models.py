"""``charnn models``: the trained runs and built-in models, or some runs compared (--compare)."""

from __future__ import annotations

import os
import sys


def cmd_models(args) -> int:
    import json

    from charnn import paths
    from charnn.report import PERIODIC_MARK, SCORE_LEGEND, fmt_count, score_cell
    from charnn.runtime.runs import RunRecord, bundled_model_info, bundled_models, list_runs

    if args.compare:
        return _compare_runs(args.compare, sys.stdout.isatty())
    runs = list_runs()
    if args.json:
        print(json.dumps([r.to_json() for r in runs], indent=2))
        return 0
    builtins = [bundled_model_info(p) for p in bundled_models()]
    # a "from" column only when some model was fine-tuned from another
    started = max((len(r.init_from) for r in [*runs, *builtins] if r.init_from), default=0)
    width = max(started, len("from"))

    def row(r: RunRecord) -> str:
        corpus = os.path.basename(r.corpus or "")
        origin = f"  {r.init_from or '-':<{width}}" if started else ""
        return (f"{r.name:<36} {r.mode:<5} {r.tokenizer or '?':<8} {r.size:<9} "
                f"{fmt_count(r.parameters or 0):>7} {r.step or 0:>7} {score_cell(r.held_out_bpc, r.best_val_bpc):>8}"
                f" {hits(r):>11}{origin}  {corpus}")

    def hits(r: RunRecord) -> str:  # a chat model's, once `charnn eval` has measured them
        return f"{r.hits_at_1:.3f}/{r.hits_at_1_pmi or 0:.3f}" if r.hits_at_1 is not None else ""

    from_column = "  " + "from".ljust(width) if started else ""
    header = (f"{'run':<36} {'mode':<5} {'tokens':<8} {'size':<9} {'params':>7} {'steps':>7} {'val bpc':>8} "
              f"{'hits@1/pmi':>11}{from_column}  corpus")
    if runs:
        print(header)
        for r in runs:
            print(row(r))
    else:
        print("No trained runs yet; start one with `charnn train CORPUS`.", file=sys.stderr)
    if builtins:
        print(f"{chr(10) if runs else ''}built-in models ({paths.bundled_checkpoints_dir()}):")
        if not runs:
            print(header)
        for r in builtins:
            print(row(r))
    if any(score_cell(r.held_out_bpc, r.best_val_bpc).endswith(PERIODIC_MARK) for r in [*runs, *builtins]):
        print(f"\n{SCORE_LEGEND}")
    print(f"\n(runs live in {paths.runs_dir()})")
    return 0


def _compare_runs(specs: list[str], chart: bool) -> int:
    """``charnn models --compare``: a table per run, the settings that differ, the curves at common points."""
    from charnn.report import fmt_count
    from charnn.tui.braille import tick_seconds
    from charnn.tui.run_curves import common_points, differences, find_runs, read_curve

    curves = [read_curve(r) for r in find_runs(specs)]
    width = max(len(c.name) for c in curves) + 2

    def num(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    print(f"{'run':<{width}}{'best val':>9}{'held-out':>9}{'steps':>8}{'tokens':>9}{'time':>8}")
    for c in curves:
        r = c.record
        print(f"{c.name:<{width}}{num(r.best_val_bpc):>9}{num(r.held_out_bpc):>9}{r.step or 0:>8,}"
              f"{fmt_count(c.total_tokens):>9}{tick_seconds(c.total_seconds):>8}")
    diffs = differences(curves)
    print("\nsettings that differ:" if diffs else "\nthe runs' settings are the same")
    for key, values in diffs:
        print(f"  {key:<24}" + "  ".join(f"{c.name}={v}" for c, v in zip(curves, values, strict=True)))
    for axis, fmt in (("tokens", fmt_count), ("seconds", tick_seconds)):
        points = common_points(curves, axis)
        label = "tokens seen" if axis == "tokens" else "training time"
        if not points:
            print(f"\nno {label} reached by every run")
            continue
        print(f"\nval bits/char at {label}\n{'':<{width}}" + "".join(f"{fmt(x):>9}" for x in points))
        for c in curves:
            print(f"{c.name:<{width}}" + "".join(f"{num(c.at(axis, x)):>9}" for x in points))
    if chart:
        _print_compare_chart(curves)
    return 0


def _print_compare_chart(curves) -> None:
    from rich.console import Console
    from rich.text import Text

    from charnn.tui import braille
    from charnn.tui.widgets.palette import PALETTE

    lines = [braille.Line(c.tokens, c.bpc, str(i), mark="●") for i, c in enumerate(curves)]
    rows = braille.chart(lines, 72, 14, x_suffix=" tokens")
    if rows is None:
        return
    console = Console(highlight=False)
    legend = Text("\nval bits/char  ")
    for i, c in enumerate(curves):
        legend.append(f"● {c.name}  ", style=PALETTE[i % len(PALETTE)])
    console.print(legend)
    for row in rows:
        text = Text()
        for piece, role in row:
            text.append(piece, style=PALETTE[int(role) % len(PALETTE)] if role.isdigit() else "dim")
        console.print(text)
