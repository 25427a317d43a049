"""Generation speed: characters/s for one stream and for a batch of streams, and time to the
first token, for the default model (or --checkpoint). Side by side: the same model stepped
through nn.LSTM one token at a time (the naive loop), so the fast path's gain is visible.

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
    from charnn.models.loading import load_model
    from charnn.sampling import generate_text, next_token
    from charnn.training.device import describe, set_cpu_threads

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

    # the naive loop: nn.LSTM called on length-1 sequences
    with torch.inference_mode():
        x = torch.tensor([[tok.encode("\n")[0]]], device=dev)
        state, n = None, min(args.length, 500)
        g = torch.Generator(device=dev).manual_seed(0)
        t0 = time.perf_counter()
        for _ in range(n):
            logits, _, state = model(x, state=state)
            x = next_token(logits[:, -1], 0.8, generator=g).view(1, 1)
        sync()
        rows.append({"path": "naive nn.LSTM loop (1 stream)", "chars/s": round(n / (time.perf_counter() - t0)),
                     "first_token_ms": ""})

        # a batch of streams through the fast step
        b = args.batch
        x = torch.full((b,), tok.encode("\n")[0], device=dev)
        state, n = None, min(args.length, 1000)
        t0 = time.perf_counter()
        for _ in range(n):
            logits, state = model.step(x, state)
            x = next_token(logits, 0.8, generator=g)
        sync()
        rows.append({"path": f"batched step ({b} streams)", "chars/s": round(b * n / (time.perf_counter() - t0)),
                     "first_token_ms": ""})
    print(table(rows, ["path", "chars/s", "first_token_ms"]))
    fast, naive = rows[0]["chars/s"], rows[1]["chars/s"]
    print(f"fast path vs naive loop: {fast / max(naive, 1):.1f}x")
    print(f"results: {save('generation', {'model': f'{cfg.layers}x{cfg.hidden}', 'device': str(dev), 'rows': rows})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
