"""Training throughput: tokens/s of charnn's full training step (data, model, loss, clipping,
AdamW, schedule, weight average, events) at a given layers x hidden and batch shape, side by side
in one process with two loops at the same layers x hidden and batch:

  * plain — the plain reference of time_to_quality.py (benchmarks/reference.py: embedding as wide
            as the hidden size, nn.LSTM, Adam, clipping, fp32). charnn / plain is issue 6's
            "never slower than the plain reference at the same model size and batch".
  * raw   — nn.LSTM forward + backward + Adam doing the same arithmetic as charnn's model (its
            embedding width, bf16 autocast where charnn uses it), nothing else: charnn / raw is the
            cost of everything around the library's LSTM kernel.

charnn runs with its own defaults for the model's other choices (on a character vocabulary the
embedding is the vocabulary rounded up to 16, not the hidden size: presets.auto_embedding) and no
dropout. The loops alternate (plain, raw, charnn, plain, ...) and each reports its best run, so a
burst of load from a neighbour on a shared machine does not land on one side only.

    python benchmarks/throughput.py                  # CPU sizes (rate between Step events, not counting the final eval)
    python benchmarks/throughput.py --no-bf16        # charnn in fp32, as on a CPU without bf16
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


def timed(step, device, steps: int) -> float:
    """Seconds for ``steps`` calls of ``step`` after 3 to warm up."""
    import torch

    for _ in range(3):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def plain_loop(tokens, vocab, layers, hidden, batch, seq, device, steps) -> float:
    from benchmarks.reference import PlainTrainer

    plain = PlainTrainer(tokens, vocab, layers, hidden, batch, seq, 2e-3, device)
    return steps * batch * seq / timed(plain.train_step, device, steps)


def raw_loop(layers, hidden, embedding, batch, seq, vocab, device, steps, bf16: bool) -> float:
    import torch
    from torch import nn

    from charnn.runtime.device import bf16_autocast

    emb = nn.Embedding(vocab, embedding).to(device)
    rnn = nn.LSTM(embedding, hidden, layers, batch_first=True).to(device)
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

    return steps * batch * seq / timed(step, device, steps)


def charnn_loop(layers, hidden, batch, seq, device, steps, bf16: bool) -> tuple[float, float | None]:
    import torch

    from charnn.config import RunSettings
    from charnn.training.events import Done, Step
    from charnn.training.trainer import train_stream

    s = RunSettings(corpus=str(SHAKESPEARE))
    s.model.layers, s.model.hidden = layers, hidden  # embedding: charnn's choice (auto_embedding)
    s.train.batch_size, s.train.seq_len, s.train.device = batch, seq, str(device)
    s.train.steps, s.train.eval_every, s.train.sample_length = steps + 3, 10**9, 0
    s.train.bf16 = bf16
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
    ap.add_argument("--sizes", nargs="+", default=["2x128", "1x256", "1x512", "2x256", "2x512"],
                    help="layers x hidden (2x128: the plain reference's own size in time_to_quality.py)")
    ap.add_argument("--batches", nargs="+", default=["32x64", "64x64"])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=2, help="alternating runs of each loop; the best counts")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-bf16", action="store_true",
                    help="charnn (and the raw loop) in fp32, as on a CPU without bf16 in hardware")
    args = ap.parse_args()
    os.environ.setdefault("CHARNN_HOME", tempfile.mkdtemp(prefix="charnn-bench-"))

    from charnn.presets import auto_embedding
    from charnn.runtime.device import describe, pick_device, set_cpu_threads
    from charnn.text.dataset import load_corpus

    device = pick_device(args.device)
    set_cpu_threads()
    corpus = load_corpus(SHAKESPEARE)
    train, _ = corpus.split(0.1)
    vocab = corpus.tokenizer.vocab_size
    print(f"device: {describe(device)}" + ("; charnn in fp32 (--no-bf16)" if args.no_bf16 else ""))
    rows = []
    for size in args.sizes:
        layers, hidden = map(int, size.split("x"))
        embedding = auto_embedding(hidden, vocab)
        for shape in args.batches:
            batch, seq = map(int, shape.split("x"))
            plains, raws, ourses = [], [], []
            for _ in range(max(1, args.repeats)):
                plains.append(plain_loop(train, vocab, layers, hidden, batch, seq, device, args.steps))
                raws.append(raw_loop(layers, hidden, embedding, batch, seq, vocab, device, args.steps, not args.no_bf16))
                ours, mem = charnn_loop(layers, hidden, batch, seq, device, args.steps, not args.no_bf16)
                ourses.append(ours)
            plain, raw, ours = max(plains), max(raws), max(ourses)
            row = {"model": size, "embedding": embedding, "batch": shape, "plain tok/s": round(plain),
                   "raw tok/s": round(raw), "charnn tok/s": round(ours), "charnn/plain": round(ours / plain, 3),
                   "charnn/raw": round(ours / raw, 3), "peak MiB": round(mem) if mem else "-"}
            rows.append(row)
            print(table([row], list(row)), flush=True)
    print("\n" + table(rows, list(rows[0])))
    worst = min(rows, key=lambda r: r["charnn/plain"])
    print(f"charnn vs the plain reference at the same layers x hidden and batch: {worst['charnn/plain']:.3f}x "
          f"at worst ({worst['model']} {worst['batch']}; "
          f"{'never slower' if worst['charnn/plain'] >= 1 else 'SLOWER'})")
    print(f"results: {save('throughput', {'device': describe(device), 'bf16': not args.no_bf16, 'rows': rows})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
