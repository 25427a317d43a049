"""Does a chat model read its context? Flat vs hierarchical encoder and the training levers, at one budget.

For each configuration: `charnn train --mode chat chitchat FLAGS` (one thread, the same seed and steps or
time), then, on its held-out conversations:

* reply bits/char with the context, without it, and the difference (the context gain);
* hits@1 of 20: the true reply ranked among itself and 19 other held-out replies by the model's loss
  given the context, summed and per token, and by the summed loss minus the loss with no context (PMI),
  over ``--replies`` held-out replies that have at least one context turn (fixed seed; the ranking of
  `charnn eval`, charnn.scoring.chat_quality; before session 10 this script ranked per token only and
  its PMI was per token too);
* beam-5 replies to everyday openers, each a fresh chat: the share of two words or fewer and the share
  of the commonest reply (does the model greet instead of answering?).

    python benchmarks/chat_context.py --steps 300 "" "--encoder hred" "--encoder hred --label-smoothing 0.1"
    python benchmarks/chat_context.py --time 20m "" "--encoder hred"
    python benchmarks/chat_context.py --checkpoint PATH [--checkpoint PATH ...]     # score models

Results: benchmarks/results/chat_context-*.json and the table in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, save, table  # noqa: E402

OPENERS = [
    "do you have any pets?", "what do you do for work?", "i just finished a marathon!", "do you like pizza?",
    "what was your first job?", "where did you grow up?", "what are you reading these days?",
    "i can't sleep tonight", "what's your favourite movie?", "any plans for the weekend?",
    "i got a new puppy today", "how was your day?",
]


def hits_at_1(model, examples, replies: int, seed: int = 0) -> dict:
    """hits@1 of 20 over ``replies`` held-out replies with context (charnn.scoring.chat_quality, as
    `charnn eval` ranks): by summed loss, by loss per token, and PMI-scored."""
    from charnn.scoring.chat_quality import rank_replies

    ranking = rank_replies(model, examples, next(model.parameters()).device, n=replies, seed=seed)
    return {"hits@1": ranking.hits_at_1(), "hits@1_per_token": ranking.hits_at_1(per_token=True),
            "hits@1_pmi": ranking.hits_at_1(1.0), "hits_replies": len(ranking.given)}


def openers(model, tokenizer) -> dict:
    from charnn.decoding.replies import generate_reply

    replies = ["".join(generate_reply(model, tokenizer, [o], beam=5, max_length=40)).strip() for o in OPENERS]
    short = sum(len(r.split()) <= 2 for r in replies) / len(replies)
    common = Counter(replies).most_common(1)[0][1] / len(replies)
    return {"openers_short": short, "openers_commonest": common, "opener_replies": dict(zip(OPENERS, replies,
                                                                                             strict=True))}


def measure(checkpoint: str, corpus: str, replies: int, chars: int, device: str = "cpu") -> dict:
    from charnn.runtime.loading import load_model
    from charnn.scoring import Score
    from charnn.scoring.evaluate import _held_out_conversations
    from charnn.scoring.replies import reply_losses
    from charnn.text.chat_batches import DialogueExamples

    loaded = load_model(checkpoint, "chat", device)
    model = loaded.model
    convs, _, _ = _held_out_conversations(loaded, corpus, "utf-8", "strict")
    ex = DialogueExamples(convs, loaded.tokenizer, model.config)
    subset, nats, tokens = reply_losses(model, ex, loaded.device, chars)
    _, nats0, _ = reply_losses(model, ex, loaded.device, chars, drop_context=True)
    n_chars = float(ex.chars[subset].sum())
    bpc, bpc0 = Score(nats.sum(), int(tokens.sum()), n_chars).bits_per_char, Score(nats0.sum(), 0, n_chars).bits_per_char
    t0 = time.perf_counter()
    result = {"bpc": bpc, "bpc_no_context": bpc0, "context_gain": bpc0 - bpc, **hits_at_1(model, ex, replies),
              **openers(model, loaded.tokenizer), "parameters": model.num_parameters()}
    result["score_s"] = time.perf_counter() - t0
    return result


def train(flags: str, budget: list[str], corpus: str, out: str) -> dict:
    cmd = [sys.executable, "-m", "charnn", "train", "--mode", "chat", corpus, *budget, "--threads", "1",
           "--out", out, "-q", *flags.split()]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode:
        raise SystemExit(f"training failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")
    return {"train_wall_s": time.perf_counter() - t0, "train_log": done.stdout.strip()[-300:]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("configs", nargs="*", help="`charnn train` flags per configuration ('' = the defaults)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--time", help="train each for this long instead of --steps (90, 20m)")
    p.add_argument("--checkpoint", action="append", default=[], help="score this model (repeatable)")
    p.add_argument("--corpus", default=None, help="dialogue file (default: the built-in chitchat)")
    p.add_argument("--device", default="cpu", help="where --checkpoint models are scored (cpu, cuda)")
    p.add_argument("--replies", type=int, default=500, help="held-out replies for hits@1")
    p.add_argument("--chars", type=int, default=60_000, help="held-out reply characters for bits/char")
    args = p.parse_args()
    import torch

    from corpora.catalog import resolve_corpus

    torch.set_num_threads(1)
    corpus = args.corpus or str(resolve_corpus("chitchat", mode="chat"))
    rows = []
    for checkpoint in args.checkpoint:
        rows.append({"config": checkpoint, **measure(checkpoint, corpus, args.replies, args.chars, args.device)})
        print(rows[-1], flush=True)
    budget = ["--time", args.time] if args.time else ["--steps", str(args.steps), "--eval-every", str(args.steps)]
    for flags in args.configs:
        with tempfile.TemporaryDirectory() as tmp:
            info = train(flags, budget, corpus, tmp)
            rows.append({"config": flags or "(defaults)", **info,
                         **measure(str(Path(tmp) / "best.pt"), corpus, args.replies, args.chars)})
        print(rows[-1], flush=True)
    shown = [{k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows]
    print(table(shown, ["config", "bpc", "bpc_no_context", "context_gain", "hits@1", "hits@1_per_token",
                        "hits@1_pmi", "openers_short", "openers_commonest", "train_wall_s"]))
    print("saved", save("chat_context", {"budget": budget, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
