"""Time to quality: validation bits/char on tiny-shakespeare reached within a wall-clock budget.

Side by side, in one process on one machine:
  * charnn   — `charnn train` with its default settings (charnn.presets), given only --time;
  * reference — the simplest honest PyTorch LSTM LM loop (benchmarks/reference.py): nn.LSTM with
                 char-rnn's default size (2 x 128), Adam at 2e-3, truncated BPTT with batch 50 x 50,
                 no tricks.
Both use the same contiguous split (last 10 % validation) and the same evaluator (the whole
validation text as contiguous streams, the state carried across windows).

    python benchmarks/time_to_quality.py --budgets 90 300
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import tempfile
import time
from itertools import pairwise

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from benchmarks.common import SHAKESPEARE, save, table  # noqa: E402

NATS_TO_BITS = 1 / math.log(2)


def run_events(settings, out: str) -> dict:
    """Train to the end; the last event of each kind by class name, the final evaluation under
    "FinalEval", and in order: the periodic evaluations ("evals"), the Step events ("steps") and the
    sample count ("samples"), and the clock of the Step event before each sample ("sample_s")."""
    from charnn.training.events import Eval, Sample, Step
    from charnn.training.trainer import train_stream

    last: dict = {"evals": [], "steps": [], "samples": 0, "sample_s": []}
    for e in train_stream(settings, out=out):
        last["FinalEval" if isinstance(e, Eval) and e.final else type(e).__name__] = e
        if isinstance(e, Eval) and not e.final:
            last["evals"].append(e)
        elif isinstance(e, Step):
            last["steps"].append(e)
        elif isinstance(e, Sample):
            last["samples"] += 1
            last["sample_s"].append(last["steps"][-1].elapsed_s if last["steps"] else 0.0)
    return last


def pause_share(steps: list, elapsed_s: float) -> float:
    """The share of the run's clock not spent training steps (evaluations, samples, saves): each Step
    event's tokens since the one before, at its rate (which leaves the pauses out), is its training time."""
    trained = sum((b.tokens - a.tokens) / b.tokens_per_s for a, b in pairwise(steps) if b.tokens_per_s > 0)
    return max(0.0, 1.0 - trained / max(elapsed_s, 1e-9))


def run_charnn(budget: float, device: str, extra: str = "") -> dict:
    from charnn.cli import build_parser
    from charnn.commands.train import settings_from_args
    from charnn.report import model_shape

    # exactly `charnn train CORPUS --time BUDGET` (plus any --train-args): presets, and on a CPU the
    # width probe
    argv = ["train", str(SHAKESPEARE), "--time", str(budget), "--device", device, *shlex.split(extra)]
    s = settings_from_args(build_parser().parse_args(argv))
    with tempfile.TemporaryDirectory() as tmp:
        last = run_events(s, os.path.join(tmp, "run"))
    start, final, done = last["Start"], last["FinalEval"], last["Done"]
    # the run header's description: width, embedding, dropout, weight decay
    row = {"name": "charnn" + (f" {extra}" if extra else ""), "model": model_shape(start).removesuffix(" | "),
           "params": start.parameters, "batch": f"{s.train.batch_size}x{s.train.seq_len}", "steps": done.step,
           "evals": len(last["evals"]), "samples": last["samples"],
           "pause_%": round(100 * pause_share(last["steps"], done.elapsed_s), 1),
           "1st_sample_s": round(last["sample_s"][0], 1) if last["sample_s"] else "-",
           "tok/s": round(done.tokens_per_s), "val_nats": round(final.val_loss, 4),
           "val_bpc": round(final.val_bpc, 4), "wall_s": round(done.elapsed_s, 1)}
    # the periodic evaluations (a slice of the held-out text: lower than the closing figure), to see
    # whether the run was still learning or had begun to overfit
    row["curve"] = [[e.step, round(e.val_bpc, 4)] for e in last["evals"]]
    return row


def run_reference(budget: float, device: str, layers: int = 2, hidden: int = 128, batch: int = 50,
                  seq: int = 50, lr: float = 2e-3) -> dict:
    import numpy as np
    import torch

    from benchmarks.reference import PlainTrainer
    from charnn.runtime.device import pick_device, set_cpu_threads
    from charnn.scoring.streams import score_stream
    from charnn.text.dataset import load_corpus
    from charnn.training.lm_task import FINAL_EVAL_STREAMS, FINAL_EVAL_WINDOW

    dev = pick_device(device)
    set_cpu_threads()
    torch.manual_seed(0)
    corpus = load_corpus(SHAKESPEARE)
    train, val = corpus.split(0.1)
    V = corpus.tokenizer.vocab_size
    plain = PlainTrainer(train, V, layers, hidden, batch, seq, lr, dev)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < budget:
        plain.train_step()
    train_s = time.perf_counter() - t0
    # scored exactly as charnn's closing evaluation scores its model
    nats, bpc = score_stream(plain.model, val, np.ones(V), FINAL_EVAL_STREAMS, FINAL_EVAL_WINDOW, dev, bf16=False)
    return {"name": "reference", "model": f"{layers}x{hidden} lstm",
            "params": sum(p.numel() for p in plain.model.parameters()), "batch": f"{batch}x{seq}",
            "steps": plain.steps, "tok/s": round(plain.steps * batch * seq / train_s), "val_nats": round(nats, 4),
            "val_bpc": round(bpc, 4), "wall_s": round(time.perf_counter() - t0, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budgets", type=float, nargs="+", default=[90, 300], help="seconds")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", choices=["charnn", "reference"], help="run one side only")
    ap.add_argument("--train-args", default="", metavar="FLAGS",
                    help='extra `charnn train` flags for charnn\'s side, e.g. "--dropout 0.3" (a lever to compare)')
    args = ap.parse_args()
    os.environ.setdefault("CHARNN_HOME", tempfile.mkdtemp(prefix="charnn-bench-"))
    from charnn.runtime.device import describe, pick_device, set_cpu_threads

    set_cpu_threads()
    print(f"device: {describe(pick_device(args.device))}; corpus {SHAKESPEARE}", flush=True)
    rows = []
    for budget in args.budgets:
        for name, fn in (("charnn", lambda b, d: run_charnn(b, d, args.train_args)), ("reference", run_reference)):
            if args.only and args.only != name:
                continue
            row = {"budget_s": budget, **fn(budget, args.device)}
            rows.append(row)
            print(table([row], [k for k in row if k != "curve"]), flush=True)
            if row.get("curve"):
                print("periodic evaluations (step, bpc on a held-out slice): "
                      + ", ".join(f"{s} {b:.3f}" for s, b in row["curve"]), flush=True)
    cols = ["budget_s", "name", "model", "params", "batch", "steps", "evals", "samples", "pause_%", "1st_sample_s",
            "tok/s", "val_nats", "val_bpc", "wall_s"]
    print("\n" + table(rows, cols))
    for budget in args.budgets:
        pair = {r["name"].split()[0]: r for r in rows if r["budget_s"] == budget}
        if len(pair) == 2:
            c, r = pair["charnn"], pair["reference"]
            print(f"budget {budget:g}s: charnn {c['val_bpc']:.3f} bpc vs reference {r['val_bpc']:.3f} bpc "
                  f"(charnn {'better' if c['val_bpc'] < r['val_bpc'] else 'NOT better'}; "
                  f"ratio {c['val_bpc'] / r['val_bpc']:.3f})")
    print(f"results: {save('time_to_quality', {'rows': rows})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
