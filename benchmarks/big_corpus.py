"""Big corpora: time and peak memory of encoding (first and cached) and of a short training run.

Writes a synthetic text of the asked size into a temporary directory (made-up words
from a fixed seed, Zipf-distributed, in sentences and lines: no third-party text),
then runs each phase in a fresh process and reports its wall time and peak resident
memory (VmHWM), beside the memory that process had before the work began:

  encode (first)   fit the tokenizer and write the cached token array (streams the file)
  encode (cached)  open the cache again (hashes the file, memory-maps the array)
  train            a short run of a small model on the whole corpus (memmap batches)

    python benchmarks/big_corpus.py                      # 1 GB, char tokenizer
    python benchmarks/big_corpus.py --size 100M --tokenizers char,bpe
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import save, table  # noqa: E402

ONSETS = ["", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
          "br", "ch", "cl", "dr", "fl", "gr", "pl", "qu", "sh", "st", "th", "tr"]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "é", "ü"]
CODAS = ["", "", "", "n", "r", "s", "t", "l", "nd", "st", "ck"]


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMG]?)B?", text.strip().upper())
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 100M or 1G)")
    return int(float(m.group(1)) * {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}[m.group(2)])


def write_synthetic_text(path: Path, n_bytes: int, seed: int = 0) -> int:
    """Made-up words in sentences, one sentence per line, until ``n_bytes`` (UTF-8) are written."""
    import numpy as np

    rng = np.random.default_rng(seed)
    words = set()
    while len(words) < 30_000:
        k = int(rng.choice([1, 1, 2, 2, 2, 3, 4]))
        words.add("".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(k)))
    vocab = np.array(sorted(words), dtype=object)
    rng.shuffle(vocab)
    p = 1.0 / np.arange(1, len(vocab) + 1) ** 1.1  # Zipf: a few words very common, most rare
    p /= p.sum()
    ends = np.array([".", ".", ".", "?", "!", ",", ";"], dtype=object)
    written = 0
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        while written < n_bytes:
            idx = rng.choice(len(vocab), size=200_000, p=p)
            lengths = rng.integers(4, 20, size=200_000 // 4)
            cuts = np.cumsum(lengths)
            cuts = cuts[cuts < len(idx)]
            tokens = vocab[idx]
            lines = []
            for sentence, end in zip(np.split(tokens, cuts), rng.choice(ends, size=len(cuts) + 1), strict=True):
                if len(sentence):
                    first = sentence[0]
                    lines.append(first[:1].upper() + first[1:] + " " + " ".join(sentence[1:]) + end)
            block = "\n".join(lines) + "\n"
            data = block.encode("utf-8")
            if written + len(data) > n_bytes:
                data = data[: n_bytes - written]
                data = data[: data.rfind(b"\n") + 1] or data.decode("utf-8", "ignore").encode()
            f.write(data.decode("utf-8"))
            written += len(data)
    return written


def rss_now() -> tuple[int, int]:
    """(current RSS, peak RSS) of this process, in bytes."""
    cur = peak = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            cur = int(line.split()[1]) * 1024
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    return cur, peak


# -- phases, each run in its own process -------------------------------------------------------


def phase_encode(corpus: str, tokenizer: str, vocab_size: int) -> dict:
    from charnn.config import TokenizerConfig
    from charnn.text.dataset import load_corpus

    before, _ = rss_now()
    t0 = time.perf_counter()
    tc = load_corpus(corpus, TokenizerConfig(kind=tokenizer, vocab_size=vocab_size))
    seconds = time.perf_counter() - t0
    n_tokens = len(tc.tokens)
    _, peak = rss_now()
    return {"seconds": seconds, "rss_before": before, "peak_rss": peak, "tokens": n_tokens,
            "vocab": tc.tokenizer.vocab_size}


def phase_train(corpus: str, tokenizer: str, vocab_size: int, steps: int) -> dict:
    import torch

    from charnn.config import RunSettings
    from charnn.training.events import Done, Start
    from charnn.training.trainer import train_stream

    torch.set_num_threads(1)
    before, _ = rss_now()
    s = RunSettings(corpus=corpus)
    s.tokenizer.kind, s.tokenizer.vocab_size = tokenizer, vocab_size
    s.model.layers, s.model.hidden = 1, 64
    s.train.batch_size, s.train.seq_len, s.train.threads = 32, 64, 1
    s.train.steps, s.train.eval_every, s.train.sample_length, s.train.device = steps, steps, 0, "cpu"
    t0 = time.perf_counter()
    start = done = None
    for event in train_stream(s, out=str(Path(os.environ["CHARNN_HOME"]) / f"run-{tokenizer}")):
        if isinstance(event, Start):
            start = event
        elif isinstance(event, Done):
            done = event
    seconds = time.perf_counter() - t0
    _, peak = rss_now()
    return {"seconds": seconds, "rss_before": before, "peak_rss": peak, "steps": done.step,
            "train_tokens": start.train_tokens, "final_val_bpc": done.best_val_bpc}


def run_phase(args: list[str], home: Path) -> dict:
    env = {**os.environ, "CHARNN_HOME": str(home), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, "--phase", *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"phase {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=parse_size, default=parse_size("1G"), help="corpus size (default 1G)")
    ap.add_argument("--tokenizers", default="char", help="comma-separated: char, bpe, unigram")
    ap.add_argument("--vocab-size", type=int, default=1000, help="subword vocabulary size")
    ap.add_argument("--train-steps", type=int, default=30)
    ap.add_argument("--workdir", default=None, help="where the temporary corpus and cache go")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.phase:
        kind, corpus, tokenizer, vocab, *rest = args.phase
        result = (phase_encode(corpus, tokenizer, int(vocab)) if kind == "encode"
                  else phase_train(corpus, tokenizer, int(vocab), int(rest[0])))
        print(json.dumps(result))
        return

    work = Path(tempfile.mkdtemp(prefix="charnn-big-", dir=args.workdir))
    rows, results = [], {}
    try:
        corpus = work / "synthetic.txt"
        t0 = time.perf_counter()
        n = write_synthetic_text(corpus, args.size)
        print(f"wrote {n / 1e6:,.0f} MB of synthetic text in {time.perf_counter() - t0:.0f} s: {corpus}", flush=True)
        for tok in [t.strip() for t in args.tokenizers.split(",") if t.strip()]:
            home = work / f"home-{tok}"
            phases = [("encode (first)", ["encode", str(corpus), tok, str(args.vocab_size)]),
                      ("encode (cached)", ["encode", str(corpus), tok, str(args.vocab_size)]),
                      (f"train {args.train_steps} steps", ["train", str(corpus), tok, str(args.vocab_size),
                                                           str(args.train_steps)])]
            for label, phase in phases:
                r = run_phase(phase, home)
                results[f"{tok}: {label}"] = r
                rows.append({"tokenizer": tok, "phase": label, "seconds": f"{r['seconds']:.1f}",
                             "peak RSS": mb(r["peak_rss"]), "RSS before": mb(r["rss_before"]),
                             "tokens": f"{r.get('tokens', r.get('train_tokens', 0)):,}"})
                print(f"  {tok:<8} {label:<18} {r['seconds']:8.1f} s   peak RSS {mb(r['peak_rss'])}", flush=True)
            cache = home / "cache"
            results[f"{tok}: cache bytes"] = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"corpus: {n / 1e6:,.0f} MB synthetic UTF-8 text")
    print(table(rows, ["tokenizer", "phase", "seconds", "peak RSS", "RSS before", "tokens"]))
    path = save(f"big_corpus-{args.size // 10**6}MB", {"corpus_bytes": n, "results": results})
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
