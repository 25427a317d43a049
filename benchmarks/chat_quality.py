"""How well a chat model converses, for each decoding: the part-1 table of issue 17.

    python -m benchmarks.chat_quality [--checkpoint checkpoints/chitchat-chat.pt] [--try beam=5,mmi=0.5,min=3 ...]

Scores the model's held-out conversations (the built-in chitchat corpus for the built-in model):
reply bits/char with its context, the last turn only and none; hits@1 of 20 (plain, PMI and at each
decoding's anti-LM weight) on 500 held-out replies; and, per decoding, the figures of its replies to 300
held-out contexts and to our openers (charnn/scoring/openers.py), with 10 example exchanges.
``--try`` adds decodings (keys: beam, mmi, tokens, min, temp, length, repeat) beside the standard four (charnn.decoding.replies.standard_decodings).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from benchmarks.common import ROOT

KEYS = {"beam": ("beam", int), "mmi": ("mmi", float), "tokens": ("mmi_tokens", int), "min": ("min_words", int),
        "temp": ("temperature", float), "length": ("length_bonus", float), "repeat": ("repeat_penalty", float), "topp": ("top_p", float), "floor": ("mmi_floor", float),
        "samples": ("samples", int)}


def parse_decoding(spec: str, max_length: int):
    """'beam=5,mmi=0.5,min=3' as a Decoding."""
    from charnn.decoding.replies import Decoding

    values = {}
    for part in filter(None, spec.split(",")):
        key, _, value = part.partition("=")
        name, kind = KEYS[key.strip()]
        values[name] = kind(value)
    return Decoding(max_length=max_length, **values)


def main(argv: list[str] | None = None) -> int:
    from charnn.decoding.replies import standard_decodings
    from charnn.runtime.checkpoint import load_checkpoint
    from charnn.scoring.evaluate import evaluate_chat_file, format_chat_eval
    from corpora.chitchat import dialogue_file

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "chitchat-chat.pt"))
    p.add_argument("--text", default=None, help="dialogue file (default: the built-in chitchat corpus)")
    p.add_argument("--try", dest="extra", action="append", default=[], help="another decoding, e.g. beam=5,mmi=0.5")
    p.add_argument("--only-tried", action="store_true", help="leave out the standard decodings")
    p.add_argument("--contexts", type=int, default=300)
    p.add_argument("--ranked", type=int, default=500)
    p.add_argument("--json", help="also write the result here")
    args = p.parse_args(argv)
    max_length = load_checkpoint(args.checkpoint)["model_config"]["max_reply_tokens"]
    decodings = {} if args.only_tried else standard_decodings(max_length)
    decodings.update({spec: parse_decoding(spec, max_length) for spec in args.extra})
    start = time.perf_counter()
    result = evaluate_chat_file(args.checkpoint, args.text or str(dialogue_file()), device="cpu",
                                decodings=decodings, n_contexts=args.contexts, n_ranked=args.ranked)
    print("\n".join(format_chat_eval(result)))
    print(f"\n({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
