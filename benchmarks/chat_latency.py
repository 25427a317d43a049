"""Seconds per chat reply: one sampled draw, and sample-and-rank's best of N drawn one after another or
side by side in one batch (what `charnn chat` does), with the built-in chat model, in one process.

    python -m benchmarks.chat_latency [--samples 8] [--threads 2] [--checkpoint PATH]

Every reply answers one of our openers (charnn/scoring/openers.py) as a fresh chat, with the default
guards (anti-LM, minimum words, repetition guard) and the default maximum reply length.
"""

from __future__ import annotations

import argparse
import time

from benchmarks.common import ROOT, save, table


def main(argv: list[str] | None = None) -> int:
    import torch

    from charnn.decoding.replies import (
        RepetitionGuard,
        WordCounter,
        default_decoding,
        encode_context,
        repeat_ngram,
        reply_candidates,
        rerank,
        sample_ids,
    )
    from charnn.runtime.loading import load_model
    from charnn.scoring.openers import OPENERS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "chitchat-chat.pt"))
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--openers", type=int, default=20)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    loaded = load_model(args.checkpoint, "chat", "cpu")
    model, tok = loaded.model, loaded.tokenizer
    best = default_decoding(loaded.model.config.max_reply_tokens)
    best.samples = args.samples
    one = default_decoding(loaded.model.config.max_reply_tokens)
    one.samples = 1
    openers = OPENERS[: args.openers]

    def in_turn(turns, gen):  # the N draws one after another (sample-and-rank before batching)
        found = []
        with torch.inference_mode():
            memory = encode_context(model, tok, turns, None, loaded.device)
            n = repeat_ngram(tok)
            for _ in range(best.samples):
                for _ in sample_ids(model, memory, best.max_length, best.temperature, generator=gen,
                                    guard=RepetitionGuard(n), mmi=best.mmi, mmi_tokens=best.mmi_tokens,
                                    min_words=best.min_words, words=WordCounter(tok), found=found,
                                    mmi_floor=best.mmi_floor):
                    pass
        return rerank(found, tok, best)

    ways = {"one draw": lambda turns, gen: reply_candidates(model, tok, turns, one, generator=gen),
            f"best of {args.samples}, one after another": in_turn,
            f"best of {args.samples}, in one batch (charnn chat)":
                lambda turns, gen: reply_candidates(model, tok, turns, best, generator=gen)}
    rows = []
    for name, way in ways.items():
        gen = torch.Generator().manual_seed(0)
        way([openers[0]], gen)  # warm-up
        start = time.perf_counter()
        for opener in openers:
            way([opener], gen)
        rows.append({"decoding": name, "s_per_reply": (time.perf_counter() - start) / len(openers)})
    base = rows[0]["s_per_reply"]
    for r in rows:
        r["x_one_draw"] = r["s_per_reply"] / base
    shown = [{k: f"{v:.3f}" if isinstance(v, float) else v for k, v in r.items()} for r in rows]
    print(table(shown, ["decoding", "s_per_reply", "x_one_draw"]))
    print(f"({args.threads} threads, {len(openers)} openers)")
    print("saved", save("chat_latency", {"threads": args.threads, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
