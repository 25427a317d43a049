"""``charnn eval``: bits per character of a text under a model (and a chat model's hits@1)."""

from __future__ import annotations

import sys

from charnn.commands import checkpoint_arg
from charnn.errors import CharnnError


def cmd_eval(args) -> int:
    from charnn.scoring.evaluate import evaluate_file

    if args.max_tokens < 0:
        raise CharnnError("--max-tokens must be 0 (the whole text) or more.")
    result = evaluate_file(checkpoint_arg(args.checkpoint), args.text, device=args.device, encoding=args.encoding,
                           errors=args.errors, max_tokens=args.max_tokens)
    if "hits_at_1" in result and str(result.get("scored", "")).startswith("the held-out"):
        from pathlib import Path

        from charnn.runtime.runs import record_scores

        recorded = record_scores(Path(result["checkpoint"]), {"reply_bpc": result["bits_per_char"],
                                 "hits_at_1": result["hits_at_1"], "hits_at_1_pmi": result["hits_at_1_pmi"]})
        if recorded is not None:
            print(f"charnn: reply bits/char and hits@1 recorded in {recorded}", file=sys.stderr)
    if args.json:
        import json

        print(json.dumps(result))
    elif "decodings" in result:
        from charnn.scoring.evaluate import format_chat_eval

        print("\n".join(format_chat_eval(result)))
    else:
        for key, value in result.items():
            print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    return 0

