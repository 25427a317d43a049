"""Scheduled sampling vs plain teacher forcing for the chat model, at the same wall-clock budget.

Two runs of `charnn train --mode chat` with the default chat settings on the built-in chitchat corpus,
one thread each, the same seed and time budget; one with plain teacher forcing (the default), one with
`--teacher-forcing SCHEDULE`. Each is then scored like `charnn eval`: held-out reply bits/char with its
context, with the last turn only and with none (the same replies for both), and distinct-1/2 of 100
sampled replies. Training throughput is reported too: below ratio 1 the decoder reads replies one token
at a time, so a time budget buys fewer steps.

    python benchmarks/scheduled_sampling.py [--time 150 | --steps N] [--schedule linear:300:0.75]

Measured (2-core machine, shared): see benchmarks/results/scheduled_sampling-*.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # the evaluation's set_cpu_threads() honours it
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import save, table, train_events  # noqa: E402


def run(corpus: str, schedule: str, budget: float, steps: int, threads: int, eval_chars: int, vocab: int,
        tmp: str) -> dict:
    from charnn.config import RunSettings
    from charnn.presets import apply_presets
    from charnn.scoring.evaluate import evaluate_chat_file
    from charnn.training.teacher_forcing import parse_teacher_forcing

    s = RunSettings(mode="chat", corpus=corpus)
    s.tokenizer.kind, s.tokenizer.vocab_size = "bpe", vocab  # 1000: what `charnn train --mode chat` uses
    apply_presets(s, device="cpu")
    t = s.train
    t.time_s, t.steps, t.device, t.threads = (0.0 if steps else budget), steps, "cpu", threads
    t.eval_every, t.sample_length = 10**9, 0  # only the final evaluation: every second goes to training
    t.teacher_forcing = str(parse_teacher_forcing(schedule))
    out = os.path.join(tmp, t.teacher_forcing.replace(":", "_"))
    last = train_events(s, out)
    done, final, last_step = last["Done"], last.get("FinalEval"), last.get("Step")
    result = evaluate_chat_file(os.path.join(out, "last.pt"), corpus, device="cpu", max_tokens=eval_chars)
    return {
        "teacher forcing": t.teacher_forcing,
        "steps": done.step,
        "train s": round(done.elapsed_s, 1),
        "train tok/s": round(done.tokens_per_s),
        "last tf": round(parse_teacher_forcing(t.teacher_forcing).ratio(done.step - 1), 3),
        "final train bpc": round(last_step.bpc, 3) if last_step else None,
        "val bpc (trainer)": round(final.val_bpc, 4) if final else None,
        "bpc ctx": round(result["bits_per_char"], 4),
        "bpc last turn": round(result["bits_per_char_last_turn_only"], 4),
        "bpc no ctx": round(result["bits_per_char_without_context"], 4),
        "ctx more likely": round(result["replies_more_likely_with_context"], 3),
        "distinct-1": round(result["distinct_1"], 3),
        "distinct-2": round(result["distinct_2"], 3),
        "replies": result["replies"],
        "examples": [result[k] for k in sorted(result) if k.startswith("example_")],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="chitchat", help="a dialogue file or built-in corpus (default chitchat)")
    ap.add_argument("--time", type=float, default=150.0, help="training seconds per run (default 150)")
    ap.add_argument("--steps", type=int, default=0, help="train this many steps per run instead of --time")
    ap.add_argument("--schedule", default="linear:300:0.75", help="the --teacher-forcing value to compare")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-chars", type=int, default=65536, help="held-out reply characters scored")
    ap.add_argument("--vocab-size", type=int, default=1000, help="subword vocabulary (default 1000)")
    args = ap.parse_args()

    from charnn.corpora.catalog import resolve_corpus

    corpus = str(resolve_corpus(args.corpus, mode="chat"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for schedule in ("1", args.schedule):
            rows.append(run(corpus, schedule, args.time, args.steps, args.threads, args.eval_chars, args.vocab_size,
                            tmp))
            print(f"done: {rows[-1]['teacher forcing']}", file=sys.stderr)
    columns = ["teacher forcing", "steps", "train tok/s", "last tf", "bpc ctx", "bpc last turn", "bpc no ctx",
               "ctx more likely", "distinct-1", "distinct-2"]
    budget = f"{args.steps} steps" if args.steps else f"{args.time:g} s of training"
    print(f"{args.corpus}: default chat model (bpe {args.vocab_size}), {budget} per run, "
          f"{args.threads} thread(s); {rows[0]['replies']} held-out replies scored\n")
    print(table(rows, columns))
    for row in rows:
        print(f"\n{row['teacher forcing']}:")
        for example in row["examples"][:3]:
            print(f"  {example}")
    path = save("scheduled_sampling", {"corpus": args.corpus, "time_s": 0 if args.steps else args.time,
                                       "steps": args.steps, "threads": args.threads,
                                       "eval_chars": args.eval_chars, "runs": rows})
    print(f"\nsaved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
