"""Rebuild a built-in model from scratch, with one command: train, export, score.

    python -m benchmarks.builtin_models chitchat-chat          # about 70 minutes on 2 CPU cores
    python -m benchmarks.builtin_models tinyshakespeare-lm     # about 11 minutes
    python -m benchmarks.builtin_models chitchat-chat --to /tmp/models --dry-run

Each recipe below is the exact `charnn train` command that made the file in checkpoints/ (its card in
checkpoints/README.md). The run trains under the user's runs directory as NAME-rebuilt, is exported
to ``--to``/NAME.pt (default: checkpoints/, replacing the shipped file) with its summary NAME.json,
and a chat model is then scored by `charnn eval` on the held-out 10 % of its conversations: the part-1
table of issue 17 (reply bits/char with the context, the last turn and none, hits@1 of 20 plain and
PMI-scored, and per decoding the replies' short share, commonest share, distinct-1/2 and words per
reply, on held-out contexts and on our openers), which `charnn eval` also records in NAME.json so
`charnn models` lists it.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT  # noqa: E402

RECIPES = {  # "eval": score the export with `charnn eval` on the corpus (a language model's summary already
    # holds its closing score over the whole held-out 10 %, from the training run's final evaluation)
    "chitchat-chat": {"corpus": "chitchat", "train": "--mode chat --time 66m --threads 2", "eval": True},
    "tinyshakespeare-lm": {"corpus": "tinyshakespeare", "train": "--time 10m", "eval": False},
}


def commands(name: str, out_dir: Path) -> list[list[str]]:
    recipe = RECIPES[name]
    run = f"{name}-rebuilt"
    target = out_dir / f"{name}.pt"
    steps = [["charnn", "train", recipe["corpus"], *shlex.split(recipe["train"]), "--name", run],
             ["charnn", "export", run, str(target)]]
    if recipe["eval"]:
        steps.append(["charnn", "eval", str(target), recipe["corpus"]])
    return steps


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", choices=sorted(RECIPES))
    p.add_argument("--to", default=str(ROOT / "checkpoints"), help="where the exported model goes")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = p.parse_args(argv)
    out_dir = Path(args.to)
    out_dir.mkdir(parents=True, exist_ok=True)
    for cmd in commands(args.name, out_dir):
        print("$ " + shlex.join(cmd), flush=True)
        if not args.dry_run and subprocess.run(cmd).returncode != 0:
            print(f"stopped: {cmd[1]} failed", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
