"""Data-parallel training under torchrun (issue 7), on CPU with the gloo backend and 2 processes.

The same ``charnn train`` command runs under ``torchrun --nproc_per_node 2``:
each rank reads its own half of the B streams and DDP averages the gradients,
so with the same global batch and no dropout the loss curve matches a
single-process run step for step. Only rank 0 prints events and writes the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from charnn.cli import main
from charnn.runtime.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
TORCHRUN = Path(sys.executable).parent / "torchrun"
# fp32: bf16 rounding differs between a batch of 8 and two halves of 4 (on CPUs with native bf16)
MODEL = ["--layers", "1", "--hidden", "32", "--dropout", "0", "--batch-size", "8", "--seq-len", "16",
         "--threads", "1", "--sample-length", "0", "--seed", "5", "--no-bf16"]

pytestmark = pytest.mark.skipif(
    not TORCHRUN.exists() or not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="needs torchrun and the gloo backend",
)


def torchrun(corpus: Path, out: Path, home: Path, *flags: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "CHARNN_HOME": str(home), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "-m", "charnn", "train", str(corpus),
           *MODEL, "--device", "cpu", "--out", str(out), "--jsonl", *flags]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def single_process(corpus: Path, out: Path, steps: int, eval_every: int) -> None:
    """The very same command in one process (so presets and defaults are the same too)."""
    argv = ["train", str(corpus), *MODEL, "--device", "cpu", "--out", str(out), "--steps", str(steps),
            "--eval-every", str(eval_every), "-q"]
    assert main(argv) == 0


def test_two_gloo_processes_match_one_process_and_only_rank_0_writes(shakespeare, tmp_path):
    corpus = tmp_path / "text.txt"
    corpus.write_text(shakespeare.read_text(encoding="utf-8")[:40_000], encoding="utf-8")
    home = tmp_path / "ddp-home"
    steps = 12
    result = torchrun(corpus, tmp_path / "ddp", home, "--steps", str(steps), "--eval-every", "6")
    assert result.returncode == 0, result.stderr[-3000:]
    single_process(corpus, tmp_path / "one", steps, 6)

    ddp = load_checkpoint(tmp_path / "ddp" / "last.pt")
    one = load_checkpoint(tmp_path / "one" / "last.pt")
    a, b = torch.tensor(ddp["history"]["train_loss"]), torch.tensor(one["history"]["train_loss"])
    assert len(a) == len(b) == steps
    assert torch.allclose(a, b, rtol=0, atol=1e-4), (a, b)
    assert a[-1] < a[0]  # it learned something, so the comparison is not of two flat lines
    assert all(torch.allclose(ddp["model"][k], one["model"][k], atol=1e-4) for k in one["model"])
    assert ddp["settings"]["train"]["batch_size"] == 8  # the global batch, 4 streams per rank

    # only rank 0 speaks and writes: one event stream, one run, nothing else under the data dir
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in events].count("start") == 1
    assert [e["event"] for e in events].count("done") == 1
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["best.pt", "events.jsonl", "last.pt", "run.json"]
    logged = [json.loads(line)["event"] for line in (tmp_path / "ddp" / "events.jsonl").read_text().splitlines()]
    assert logged.count("start") == 1 and logged.count("done") == 1
    assert not (home / "runs").exists()


def test_a_time_budget_ends_every_rank_at_the_same_step(shakespeare, tmp_path):
    """Each rank has its own clock; the stop is decided together, or one rank would hang in allreduce."""
    corpus = tmp_path / "text.txt"
    corpus.write_text(shakespeare.read_text(encoding="utf-8")[:40_000], encoding="utf-8")
    result = torchrun(corpus, tmp_path / "ddp", tmp_path / "home", "--time", "3", timeout=90)
    assert result.returncode == 0, result.stderr[-3000:]
    done = json.loads(result.stdout.splitlines()[-1])
    assert done["event"] == "done" and done["reason"] == "budget"
    assert load_checkpoint(tmp_path / "ddp" / "last.pt")["step"] == done["step"]
