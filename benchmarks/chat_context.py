"""Does a chat model read its context? Flat vs hierarchical encoder and the training levers, at one budget.

For each configuration: `charnn train --mode chat chitchat FLAGS` (one thread, the same seed and steps),
then, on its held-out conversations:

* reply bits/char with the context, without it, and the difference (the context gain);
* hits@1 of 20: the true reply ranked among itself and 19 other held-out replies by the model's loss
  per token given the context (plain) and by that loss minus the loss with no context (PMI), over
  ``--replies`` held-out replies that have at least one context turn (fixed seed);
* beam-5 replies to everyday openers, each a fresh chat: the share of two words or fewer and the share
  of the commonest reply (does the model greet instead of answering?).

    python benchmarks/chat_context.py --steps 300 "" "--encoder hred" "--encoder hred --label-smoothing 0.1"
    python benchmarks/chat_context.py --checkpoint PATH      # score one model

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

CANDIDATES = 20
OPENERS = [
    "do you have any pets?", "what do you do for work?", "i just finished a marathon!", "do you like pizza?",
    "what was your first job?", "where did you grow up?", "what are you reading these days?",
    "i can't sleep tonight", "what's your favourite movie?", "any plans for the weekend?",
    "i got a new puppy today", "how was your day?",
]


def pool_losses(model, ctx, lengths, rin, tgt, pad: int, chunk: int = 16):
    """Loss per token (C x N) of every candidate reply (N rows of ``rin``/``tgt``) under every context."""
    import torch
    import torch.nn.functional as F

    n = rin.size(0)
    out = torch.zeros(ctx.size(0), n)
    for start in range(0, ctx.size(0), chunk):
        c = min(chunk, ctx.size(0) - start)
        width = int(lengths[start : start + c].max())
        memory = model.encode(ctx[start : start + c, :width], lengths[start : start + c])
        rows = torch.arange(c).repeat_interleave(n)
        logits, _ = model.decode(memory.select(rows), rin.repeat(c, 1))
        loss = F.cross_entropy(logits.transpose(1, 2).float(), tgt.repeat(c, 1), ignore_index=pad, reduction="none")
        real = (tgt != pad).sum(1).clamp(min=1).repeat(c)
        out[start : start + c] = (loss.sum(1) / real).view(c, n)
    return out


def hits_at_1(model, examples, replies: int, seed: int = 0) -> dict:
    """hits@1 of CANDIDATES, plain and PMI-scored, over ``replies`` held-out replies with context."""
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    eligible = np.nonzero((examples.reply - examples.first >= 1) & (examples.turn_len[examples.reply] > 0))[0]
    pool = np.sort(rng.choice(eligible, size=min(replies, len(eligible)), replace=False))
    ctx, lengths, rin, tgt = (torch.from_numpy(a) for a in examples.batch(pool))
    _, _, rin0, tgt0 = examples.batch(pool)
    none_ctx = torch.full((1, 1), examples.cfg.sep_id)
    pad = examples.cfg.pad_id
    plain = pmi = 0
    with torch.no_grad():
        prior = pool_losses(model, none_ctx, torch.ones(1, dtype=torch.long), rin, tgt, pad)[0]
        for i in range(len(pool)):
            others = rng.choice(np.delete(np.arange(len(pool)), i), CANDIDATES - 1, replace=False)
            cand = torch.from_numpy(np.concatenate([[i], others]))
            loss = pool_losses(model, ctx[i : i + 1], lengths[i : i + 1], rin[cand], tgt[cand], pad)[0]
            plain += int(loss.argmin() == 0)
            pmi += int((loss - prior[cand]).argmin() == 0)
    return {"hits@1": plain / len(pool), "hits@1_pmi": pmi / len(pool), "hits_replies": len(pool)}


def openers(model, tokenizer) -> dict:
    from charnn.decoding.replies import generate_reply

    replies = ["".join(generate_reply(model, tokenizer, [o], beam=5, max_length=40)).strip() for o in OPENERS]
    short = sum(len(r.split()) <= 2 for r in replies) / len(replies)
    common = Counter(replies).most_common(1)[0][1] / len(replies)
    return {"openers_short": short, "openers_commonest": common, "opener_replies": dict(zip(OPENERS, replies,
                                                                                             strict=True))}


def measure(checkpoint: str, corpus: str, replies: int, chars: int) -> dict:
    from charnn.runtime.loading import load_model
    from charnn.scoring import Score
    from charnn.scoring.evaluate import _held_out_conversations
    from charnn.scoring.replies import reply_losses
    from charnn.text.chat_batches import DialogueExamples

    loaded = load_model(checkpoint, "chat", "cpu")
    model = loaded.model
    convs, _ = _held_out_conversations(loaded, corpus, "utf-8", "strict")
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


def train(flags: str, steps: int, corpus: str, out: str) -> dict:
    cmd = [sys.executable, "-m", "charnn", "train", "--mode", "chat", corpus, "--steps", str(steps), "--threads",
           "1", "--out", out, "--eval-every", str(steps), "-q", *flags.split()]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode:
        raise SystemExit(f"training failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")
    return {"train_wall_s": time.perf_counter() - t0, "train_log": done.stdout.strip()[-300:]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("configs", nargs="*", help="`charnn train` flags per configuration ('' = the defaults)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--checkpoint", help="score this model instead of training")
    p.add_argument("--corpus", default=None, help="dialogue file (default: the built-in chitchat)")
    p.add_argument("--replies", type=int, default=500, help="held-out replies for hits@1")
    p.add_argument("--chars", type=int, default=60_000, help="held-out reply characters for bits/char")
    args = p.parse_args()
    import torch

    from corpora.catalog import resolve_corpus

    torch.set_num_threads(1)
    corpus = args.corpus or str(resolve_corpus("chitchat", mode="chat"))
    rows = []
    if args.checkpoint:
        rows.append({"config": args.checkpoint, **measure(args.checkpoint, corpus, args.replies, args.chars)})
    for flags in args.configs:
        with tempfile.TemporaryDirectory() as tmp:
            info = train(flags, args.steps, corpus, tmp)
            rows.append({"config": flags or "(defaults)", **info,
                         **measure(str(Path(tmp) / "best.pt"), corpus, args.replies, args.chars)})
        print(rows[-1], flush=True)
    shown = [{k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows]
    print(table(shown, ["config", "bpc", "bpc_no_context", "context_gain", "hits@1", "hits@1_pmi", "openers_short",
                        "openers_commonest", "train_wall_s"]))
    print("saved", save("chat_context", {"steps": args.steps, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
