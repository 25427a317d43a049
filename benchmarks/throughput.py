"""Training throughput: tokens/s of charnn's full training step (data, model, loss, clipping,
AdamW, schedule, events) against a raw nn.LSTM forward+backward+Adam loop at the same model
size and batch shape, side by side in one process, so the overhead around the LSTM shows.
The two loops alternate (raw, charnn, raw, charnn, ...) and each reports its best run, so a
burst of load from a neighbour on a shared machine does not land on one side only.

    python benchmarks/throughput.py                  # CPU sizes (rate between Step events, not counting the final eval)
    python benchmarks/throughput.py --sizes 3x1024 --batches 128x128 --device cuda
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SHAKESPEARE, save, table  # noqa: E402


def raw_loop(layers, hidden, batch, seq, vocab, device, steps, bf16) -> float:
    import torch
    from torch import nn

    from charnn.training.device import bf16_autocast

    emb = nn.Embedding(vocab, hidden).to(device)
    rnn = nn.LSTM(hidden, hidden, layers, batch_first=True).to(device)
    head = nn.Linear(hidden, vocab).to(device)
    params = [*emb.parameters(), *rnn.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3)
    x = torch.randint(0, vocab, (batch, seq), device=device)
    y = torch.randint(0, vocab, (batch, seq), device=device)
    autocast = bf16_autocast(device, bf16)  # the precision charnn trains in here: the same work

    def step():
        with autocast:
            out, _ = rnn(emb(x))
            loss = nn.functional.cross_entropy(head(out).reshape(-1, vocab).float(), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch * seq / (time.perf_counter() - t0)


def charnn_loop(layers, hidden, batch, seq, device, steps) -> tuple[float, float | None]:
    import torch

    from charnn.config import RunSettings
    from charnn.training.events import Done, Step
    from charnn.training.trainer import train_stream

    s = RunSettings(corpus=str(SHAKESPEARE))
    s.model.layers, s.model.hidden, s.model.embedding = layers, hidden, hidden  # the raw loop's shape
    s.train.batch_size, s.train.seq_len, s.train.device = batch, seq, str(device)
    s.train.steps, s.train.eval_every, s.train.sample_length = steps + 3, 10**9, 0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    # rate between the first Step event after warm-up and the last one (Step events come every
    # 0.25 s); the final evaluation and checkpoint between the last step and Done are not training
    first = last = None
    with tempfile.TemporaryDirectory() as tmp:
        for e in train_stream(s, out=os.path.join(tmp, "run")):
            if isinstance(e, Step) and e.step >= 3:
                now = time.perf_counter()
                if first is None:
                    first = (e.step, now)
                last = (e.step, now)
            if isinstance(e, Done):
                break
    if first is None or last[0] == first[0]:
        raise SystemExit("too few steps to time; raise --steps")
    rate = (last[0] - first[0]) * batch * seq / (last[1] - first[1])
    mem = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    return rate, mem


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["1x256", "1x512", "2x256", "2x512"])
    ap.add_argument("--batches", nargs="+", default=["32x64", "64x64"])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=2, help="alternating runs of each loop; the best counts")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    os.environ.setdefault("CHARNN_HOME", tempfile.mkdtemp(prefix="charnn-bench-"))

    from charnn.text.dataset import load_corpus
    from charnn.training.device import describe, pick_device, set_cpu_threads

    device = pick_device(args.device)
    set_cpu_threads()
    vocab = load_corpus(SHAKESPEARE).tokenizer.vocab_size
    print(f"device: {describe(device)}")
    rows = []
    for size in args.sizes:
        layers, hidden = map(int, size.split("x"))
        for shape in args.batches:
            batch, seq = map(int, shape.split("x"))
            raws, ourses = [], []
            for _ in range(max(1, args.repeats)):
                raws.append(raw_loop(layers, hidden, batch, seq, vocab, device, args.steps, True))
                ours, mem = charnn_loop(layers, hidden, batch, seq, device, args.steps)
                ourses.append(ours)
            raw, ours = max(raws), max(ourses)
            row = {"model": size, "batch": shape, "raw tok/s": round(raw), "charnn tok/s": round(ours),
                   "charnn/raw": round(ours / raw, 3), "peak MiB": round(mem) if mem else "-"}
            rows.append(row)
            print(table([row], list(row)), flush=True)
    print("\n" + table(rows, list(rows[0])))
    print(f"results: {save('throughput', {'device': describe(device), 'rows': rows})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
