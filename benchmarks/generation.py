"""Generation speed: characters/s for one stream and for a batch of streams, and time to the
first token, for the default model (or --checkpoint). Side by side in the same run: charnn's
Stepper (charnn/models/stepper.py, fused Gumbel-max draw), the previous path (model.step +
softmax/multinomial per token) and the naive loop (nn.LSTM on length-1 sequences).

    python benchmarks/generation.py [--checkpoint PATH] [--length 2000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import save, table  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=None, help="default: the built-in Shakespeare model")
    ap.add_argument("--length", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import torch

    from charnn.config import SampleConfig
    from charnn.decoding.sampling import generate_text, next_token
    from charnn.runtime.device import describe, set_cpu_threads
    from charnn.runtime.loading import load_model

    set_cpu_threads()
    t0 = time.perf_counter()
    loaded = load_model(args.checkpoint, "lm", args.device)
    load_s = time.perf_counter() - t0
    model, tok, dev = loaded.model, loaded.tokenizer, loaded.device
    cfg = model.config
    print(f"model {loaded.path} ({cfg.layers}x{cfg.hidden} {cfg.cell}) on {describe(dev)}; loaded in {load_s * 1e3:.0f} ms")
    rows = []

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    # one stream through the public API: first piece latency and steady rate
    sample = SampleConfig(temperature=0.8, length=args.length, seed=0)
    t0 = time.perf_counter()
    it = generate_text(model, tok, sample, dev)
    first = next(it)
    first_s = time.perf_counter() - t0
    chars = len(first) + sum(len(p) for p in it)
    total = time.perf_counter() - t0
    rows.append({"path": "charnn generate (1 stream)", "chars/s": round(chars / total),
                 "first_token_ms": round(first_s * 1e3, 1)})

    def rate(loop, streams: int, n: int) -> int:
        loop(20)  # warm up
        t0 = time.perf_counter()
        loop(n)
        sync()
        return round(streams * n / (time.perf_counter() - t0))

    start = tok.encode("\n")[0]
    g = torch.Generator(device=dev).manual_seed(0)

    def step_loop(b):  # the previous fast path (the removed model.step): ATen cell kernels + multinomial
        from charnn.models.cells import step

        def loop(n):
            x = torch.full((b,), start, device=dev)
            hs = [torch.zeros(b, cfg.hidden, device=dev) for _ in range(cfg.layers)]
            cs = [h.clone() for h in hs]
            for _ in range(n):
                with torch.inference_mode():
                    logits = model.head(step(model.rnn, cfg.cell, model.embed(x), hs, cs))
                    x = next_token(logits, 0.8, generator=g)
                x.tolist()
        return loop

    def stepper_loop(b):  # what charnn generate runs: Stepper + fused Gumbel-max draw
        def loop(n):
            st = model.stepper(b)
            x = torch.full((b,), start, device=dev)
            for _ in range(n):
                x = st.sample(st.advance(x), 0.8, g)
                x.tolist()
        return loop

    def naive_loop(n):  # nn.LSTM called on length-1 sequences
        with torch.inference_mode():
            x, state = torch.full((1, 1), start, device=dev), None
            for _ in range(n):
                logits, _, state = model(x, state=state)
                x = next_token(logits[:, -1], 0.8, generator=g).view(1, 1)
                x.tolist()

    n1 = min(args.length, 2000)
    rows.append({"path": "Stepper + Gumbel-max (1 stream)", "chars/s": rate(stepper_loop(1), 1, n1), "first_token_ms": ""})
    rows.append({"path": "model.step + multinomial (1 stream)", "chars/s": rate(step_loop(1), 1, n1),
                 "first_token_ms": ""})
    rows.append({"path": "naive nn.LSTM loop (1 stream)", "chars/s": rate(naive_loop, 1, min(n1, 500)),
                 "first_token_ms": ""})
    b = args.batch
    rows.append({"path": f"Stepper + Gumbel-max ({b} streams)", "chars/s": rate(stepper_loop(b), b, 500),
                 "first_token_ms": ""})
    rows.append({"path": f"model.step + multinomial ({b} streams)", "chars/s": rate(step_loop(b), b, 500),
                 "first_token_ms": ""})
    print(table(rows, ["path", "chars/s", "first_token_ms"]))
    by = {r["path"].split(" (")[0]: r["chars/s"] for r in rows[1:4]}
    print(f"Stepper vs model.step loop: {by['Stepper + Gumbel-max'] / by['model.step + multinomial']:.2f}x; "
          f"vs naive nn.LSTM loop: {by['Stepper + Gumbel-max'] / by['naive nn.LSTM loop']:.1f}x")
    print(f"results: {save('generation', {'model': f'{cfg.layers}x{cfg.hidden}', 'device': str(dev), 'rows': rows})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
