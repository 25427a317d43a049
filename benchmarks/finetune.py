"""Fine-tuning vs from scratch (issue 20): held-out bits/char on texts the built-in models never saw.

Two texts:
  * python   — the first ~300 kB of whole files of the python-stdlib built-in corpus (built offline);
               tinyshakespeare-lm read only Shakespeare;
  * dialogue — conversations of chitchat from the part the built-in chat model held out: chitchat-chat's
               checkpoint records its corpus (by hash) and --val-fraction, so the last 10 % of the
               conversations are ones it never trained on.
For each text and budget, two `charnn train` runs AT THE SAME TIME, one thread each, so a noisy shared
machine slows both alike:
  * finetune — `--init-from` the built-in model (charnn's fine-tuning defaults, charnn.presets);
  * scratch  — the same command without it (charnn's presets for a new model).
Both hold out the same last 10 % of the same text; the figure is the closing held-out bits/char.

    python benchmarks/finetune.py --budgets 30 120 300
    python benchmarks/finetune.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, save, table  # noqa: E402

BUILTIN = {"python": ("tinyshakespeare-lm", "lm"), "dialogue": ("chitchat-chat", "chat")}


def python_text(out: Path, size: int) -> dict:
    """Whole files from the start of python-stdlib until ``size`` bytes."""
    from charnn.corpora import python_stdlib

    source = python_stdlib.corpus_file().read_text(encoding="utf-8")
    files = source.split("\n# ---- ")
    text, n = files[0], 1
    while len(text.encode()) < size and n < len(files):
        text += "\n# ---- " + files[n]
        n += 1
    out.write_text(text, encoding="utf-8")
    return {"path": str(out), "bytes": out.stat().st_size, "files": n, "from": "python-stdlib"}


def dialogue_text(out: Path, conversations: int) -> dict:
    """Conversations from the held-out part of the built-in chat model's training corpus."""
    from charnn.corpora import chitchat
    from charnn.runtime.checkpoint import read_checkpoint
    from charnn.runtime.runs import find_model
    from charnn.text.corpus import hash_file
    from charnn.text.dialogue import format_plain, read_dialogues, split_conversations

    ck = read_checkpoint(find_model("chitchat-chat").path)
    path = chitchat.dialogue_file()
    if hash_file(path).sha256 != ck.corpus.get("corpus_sha256"):
        raise SystemExit(f"{path} is not the text chitchat-chat was trained on (its hash differs); cannot tell "
                         f"which conversations it held out.")
    val_fraction = ck.settings.get("train", {}).get("val_fraction", 0.1)
    _, held_out = split_conversations(read_dialogues(path), val_fraction)
    chosen = held_out[:conversations]
    out.write_text(format_plain(chosen, chitchat.SPEAKERS), encoding="utf-8")
    return {"path": str(out), "bytes": out.stat().st_size, "conversations": len(chosen),
            "held_out_by_builtin": len(held_out), "from": f"chitchat, last {val_fraction:.0%} (held out)"}


def launch(text: dict, mode: str, budget: float, run_dir: Path, init_from: str | None, extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "charnn", "train", text["path"], "--mode", mode, "--time", str(budget),
            "--threads", "1", "--jsonl", "--out", str(run_dir), *shlex.split(extra)]
    if init_from:
        argv += ["--init-from", init_from]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def outcome(proc: subprocess.Popen) -> dict:
    """The run's closing held-out score and its speed, from its JSON-line events."""
    from charnn.training.events import Done, Eval, Notice, from_json

    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"a run failed ({proc.returncode}): {err.strip()[-500:]}")
    row: dict = {"notices": []}
    for line in out.splitlines():
        e = from_json(line)
        if isinstance(e, Eval) and e.final:
            row["bpc"] = round(e.val_bpc, 4)
        elif isinstance(e, Notice):
            row["notices"].append(e.message)
        elif isinstance(e, Done):
            row.update(steps=e.step, tok_s=round(e.tokens_per_s), wall_s=round(e.elapsed_s, 1))
            row["bpc"] = round(e.held_out_bpc, 4) if e.held_out_bpc is not None else row.get("bpc")
    return row


def final_sample(run_dir: Path, mode: str, text: dict, length: int = 300) -> str:
    """A sample of the run's finished model (seed 1, temperature 0.8): text for a language model, for a chat
    model replies to the first turns of the first held-out conversations of the text."""
    import torch

    from charnn.runtime.loading import load_model

    loaded = load_model(run_dir, mode, "cpu")
    gen = torch.Generator().manual_seed(1)
    if mode == "lm":
        from charnn.config import SampleConfig
        from charnn.decoding.sampling import generate_text

        return "".join(generate_text(loaded.model, loaded.tokenizer, SampleConfig(length=length), "cpu", gen))
    from charnn.decoding.replies import format_exchange, generate_reply
    from charnn.text.dialogue import read_dialogues, split_conversations

    _, held_out = split_conversations(read_dialogues(text["path"]), 0.1)
    exchanges = []
    for turns in held_out[:3]:
        reply = "".join(generate_reply(loaded.model, loaded.tokenizer, turns[:2], max_length=60, generator=gen,
                                       device="cpu"))
        exchanges.append(format_exchange(turns[:2], reply))
    return "\n".join(exchanges)


def run_pair(text: dict, name: str, budget: float, tmp: Path, extra: str, finetune_extra: str = "") -> dict:
    """Fine-tuned and from scratch, side by side at the same time."""
    builtin, mode = BUILTIN[name]
    procs = {"finetune": launch(text, mode, budget, tmp / f"{name}-{budget:g}-finetune", builtin,
                                f"{extra} {finetune_extra}"),
             "scratch": launch(text, mode, budget, tmp / f"{name}-{budget:g}-scratch", None, extra)}
    sides = {side: outcome(p) for side, p in procs.items()}
    for side, row in sides.items():
        row["sample"] = final_sample(tmp / f"{name}-{budget:g}-{side}", mode, text)
    f, s = sides["finetune"], sides["scratch"]
    return {"text": name, "budget_s": budget, "from": builtin, "finetune_bpc": f["bpc"], "scratch_bpc": s["bpc"],
            "gain_bpc": round(s["bpc"] - f["bpc"], 4), "finetune_steps": f["steps"], "scratch_steps": s["steps"],
            "finetune_tok_s": f["tok_s"], "scratch_tok_s": s["tok_s"], "samples": {k: v.get("sample", "") for k, v in
                                                                                    sides.items()},
            "notices": f["notices"]}


def crossing(rows: list[dict]) -> str:
    """Which side leads at each budget measured, and where the lead changes hands."""
    rows = sorted(rows, key=lambda r: r["budget_s"])
    ahead = ["fine-tuned" if r["finetune_bpc"] < r["scratch_bpc"] else "scratch" for r in rows]
    changes = [f"between {a['budget_s']:g} s and {b['budget_s']:g} s ({x} → {y} ahead)"
               for a, b, x, y in zip(rows, rows[1:], ahead, ahead[1:], strict=False) if x != y]
    if changes:
        return "the curves cross " + "; ".join(changes)
    return (f"no crossing from {rows[0]['budget_s']:g} s to {rows[-1]['budget_s']:g} s: {ahead[0]} ahead throughout "
            f"(by {abs(rows[-1]['gain_bpc']):.3f} bpc at the last)")


def side_by_side(a: str, b: str, width: int = 48) -> str:
    def lines(text: str) -> list[str]:
        return [piece for line in text.splitlines() for piece in (textwrap.wrap(line, width) or [""])]

    left, right = lines(a), lines(b)
    n = max(len(left), len(right))
    left, right = left + [""] * (n - len(left)), right + [""] * (n - len(right))
    head = f"{'fine-tuned':<{width}} | from scratch"
    return "\n".join([head, "-" * (2 * width + 3)] + [f"{x:<{width}} | {y}" for x, y in zip(left, right, strict=True)])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budgets", type=float, nargs="+", default=[30, 120, 300], help="seconds per run")
    ap.add_argument("--quick", action="store_true", help="one 20 s budget on smaller texts: does it work")
    ap.add_argument("--texts", nargs="+", choices=list(BUILTIN), default=list(BUILTIN))
    ap.add_argument("--python-bytes", type=int, default=300_000)
    ap.add_argument("--conversations", type=int, default=300, help="held-out chitchat conversations to use")
    ap.add_argument("--train-args", default="", metavar="FLAGS", help="extra `charnn train` flags for both sides")
    ap.add_argument("--finetune-args", default="", metavar="FLAGS",
                    help='extra flags for the fine-tuned side only, e.g. "--lr 8e-3 --warmup 0" (a lever to compare)')
    args = ap.parse_args()
    if args.quick:
        args.budgets, args.python_bytes, args.conversations = [20], 100_000, 100
    rows = []
    with tempfile.TemporaryDirectory(prefix="charnn-finetune-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ.setdefault("CHARNN_HOME", str(tmp / "home"))  # the corpora and token caches: gone after
        texts = {}
        if "python" in args.texts:
            texts["python"] = python_text(tmp / "stdlib-slice.py.txt", args.python_bytes)
        if "dialogue" in args.texts:
            texts["dialogue"] = dialogue_text(tmp / "chitchat-held-out.txt", args.conversations)
        for name, text in texts.items():
            print(f"{name}: {json.dumps({k: v for k, v in text.items() if k != 'path'})}", flush=True)
        for budget in args.budgets:
            for name, text in texts.items():
                row = run_pair(text, name, budget, tmp, args.train_args, args.finetune_args)
                rows.append(row)
                print(f"{name} {budget:g}s: fine-tuned {row['finetune_bpc']:.3f} bpc ({row['finetune_steps']} steps) vs "
                      f"scratch {row['scratch_bpc']:.3f} bpc ({row['scratch_steps']} steps)", flush=True)
    cols = ["text", "budget_s", "from", "finetune_bpc", "scratch_bpc", "gain_bpc", "finetune_steps", "scratch_steps",
            "finetune_tok_s", "scratch_tok_s"]
    print("\n" + table(rows, cols))
    for name in texts:
        print(f"{name}: {crossing([r for r in rows if r['text'] == name])}")
    first = min(args.budgets)
    for row in rows:
        if row["budget_s"] == first:
            print(f"\nsamples after {first:g} s, {row['text']}:\n"
                  + side_by_side(row["samples"]["finetune"], row["samples"]["scratch"]))
    saved = save("finetune", {"texts": texts, "rows": rows, "train_args": args.train_args,
                              "finetune_args": args.finetune_args})
    print(f"\nresults: {saved}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
