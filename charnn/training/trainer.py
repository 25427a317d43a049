"""The training loop, as a generator of events.

``train_stream`` builds a task (language model or chat), trains it under a
budget of steps / wall-clock time / epochs, and yields ``Start``, ``Step``,
``Eval``, ``Sample``, ``Checkpoint``, ``Notice`` and ``Done`` events. It checks
``stop`` every step, so a UI or a signal handler can end it cleanly: the run is
then saved and can be resumed with the same loss curve it would have had.
"""

from __future__ import annotations

import copy
import errno
import math
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Protocol

import torch

from charnn import paths
from charnn.config import MAX_BATCH_SIZE, MAX_SEQ_LEN, ModelConfig, RunSettings
from charnn.errors import CharnnError
from charnn.presets import DEFAULT_TIME_BUDGET_S
from charnn.runtime.checkpoint import load_checkpoint, save_checkpoint, summary, write_json_atomic
from charnn.runtime.device import bf16_autocast, describe, pick_device, set_cpu_threads
from charnn.runtime.runs import resolve_run_dir
from charnn.training import distributed, memory
from charnn.training.averaging import WeightAverage
from charnn.training.events import Checkpoint, Done, Error, Eval, Event, Notice, Sample, Start, Step
from charnn.training.optim import adamw
from charnn.training.schedule import lr_at

MAX_NAN_RETRIES = 3
FINAL_EVAL_TOKENS = 1 << 20


class StopFlag(Protocol):
    def is_set(self) -> bool: ...


def _make_task(settings: RunSettings, device, dist, tokenizer=None, model_config=None):
    if settings.mode == "lm":
        from charnn.training.lm_task import LMTask

        return LMTask(settings, device, dist.rank, dist.world, tokenizer, model_config)
    if settings.mode == "chat":
        from charnn.training.chat_task import ChatTask

        return ChatTask(settings, device, dist.rank, dist.world, tokenizer, model_config)
    raise CharnnError(f"Unknown --mode {settings.mode!r}; use lm or chat.")


def validate_settings(s: RunSettings) -> None:
    m, t = s.model, s.train
    checks = [
        (1 <= m.layers <= 64, "--layers must be between 1 and 64."),
        (1 <= m.hidden <= 16384, "--hidden must be between 1 and 16384."),
        (0 <= m.embedding <= 16384, "--embedding must be between 0 and 16384."),
        (0.0 <= m.dropout < 1.0, "--dropout must be in [0, 1)."),
        (1 <= t.batch_size <= MAX_BATCH_SIZE, f"--batch-size must be between 1 and {MAX_BATCH_SIZE}."),
        (1 <= t.seq_len <= MAX_SEQ_LEN, f"--seq-len must be between 1 and {MAX_SEQ_LEN}."),
        (0.0 < t.lr <= 10.0 and math.isfinite(t.lr), "--lr must be a positive number no larger than 10."),
        (t.steps >= 0, "--steps must be 0 or more."),
        (t.warmup_steps >= 0, "--warmup must be 0 or more."),
        (t.time_s >= 0 and math.isfinite(t.time_s), "--time must be 0 or more."),
        (t.epochs >= 0, "--epochs must be 0 or more."),
        (0.0 < t.val_fraction < 1.0, "--val-fraction must be between 0 and 1."),
        (t.grad_clip >= 0, "--grad-clip must be 0 (off) or more."),
        (0.0 <= t.weight_decay <= 10.0 and math.isfinite(t.weight_decay), "--weight-decay must be between 0 and 10."),
        (0.0 <= t.ema < 1.0, "--ema must be at least 0 (off) and below 1."),
        (t.eval_every >= 0 and t.sample_every >= 0, "--eval-every and --sample-every must be 0 or more."),
        (0 <= t.sample_length <= 100_000, "--sample-length must be between 0 and 100000."),
        (t.patience >= 0, "--patience must be 0 or more."),
        (t.threads >= 0, "--threads must be 0 (auto) or more."),
        (s.tokenizer.kind in ("char", "bpe", "unigram"), "--tokenizer must be char, bpe or unigram."),
        (s.tokenizer.kind == "char" or 2 <= s.tokenizer.vocab_size <= 1_000_000,
         "--vocab-size must be between 2 and 1,000,000 for a subword tokenizer."),
    ]
    for ok, message in checks:
        if not ok:
            raise CharnnError(message)


def new_run_dir(corpus: str, name: str | None, out: str | None) -> Path:
    if out:
        return Path(out).expanduser()
    stem = name or re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(corpus).stem or "run").strip("-") or "run"
    if name:
        return paths.runs_dir() / stem
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    d = paths.runs_dir() / f"{stem}-{stamp}"
    i = 2
    while d.exists():
        d = paths.runs_dir() / f"{stem}-{stamp}-{i}"
        i += 1
    return d


def check_writable(run_dir: Path) -> None:
    """Fail before training, not at the first save, when the run directory cannot be written."""
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=run_dir, prefix=".write-test-"):
            pass
    except OSError as e:
        if created:
            shutil.rmtree(run_dir, ignore_errors=True)
        why = "the disk is full" if e.errno == errno.ENOSPC else "it is read-only or not writable"
        raise CharnnError(f"Cannot write to the run directory {run_dir}: {why}; pass --out with a "
                          f"writable place.") from None


def describe_budget(t) -> str:
    parts = []
    if t.steps:
        parts.append(f"{t.steps} steps")
    if t.time_s:
        parts.append(f"{t.time_s:g} s")
    if t.epochs:
        parts.append(f"{t.epochs:g} epochs")
    return " or ".join(parts) + " (whichever comes first)" if len(parts) > 1 else parts[0]


class _Clock:
    """Training time, excluding evaluation and checkpoint pauses from throughput."""

    def __init__(self, elapsed: float = 0.0):
        self.start = time.perf_counter() - elapsed

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def grad_scaler(device, autocast: bool):
    """Loss scaling where training runs in fp16: under autocast cuDNN runs an LSTM in fp16 whatever
    autocast's dtype (ATen's AutocastRNN.cpp; seen on an H200, torch 2.11: bf16 autocast, fp16
    output), and the gradients of a loss averaged over thousands of tokens fall into fp16's
    subnormals. Dynamic: a step whose gradients overflow is skipped and the scale halved."""
    return torch.amp.GradScaler(device.type, enabled=device.type == "cuda" and autocast)


def train_stream(
    settings: RunSettings | None = None,
    *,
    out: str | None = None,
    name: str | None = None,
    resume: str | None = None,
    budget: dict | None = None,
    stop: StopFlag | None = None,
) -> Iterator[Event]:
    """Train and yield events. ``resume`` continues a run; ``budget`` overrides its budgets."""
    dist = distributed.setup(settings.train.device if settings else "auto")
    try:
        yield from _train(settings, out, name, resume, budget or {}, stop, dist)
    finally:
        distributed.teardown(dist)


def _train(settings, out, name, resume, budget, stop, dist) -> Iterator[Event]:
    ck = None
    if resume:
        run_dir = resolve_run_dir(resume)
        ck = load_checkpoint(run_dir / "last.pt")
        settings = RunSettings.from_dict(ck["settings"])
        if "ema" not in ck["settings"].get("train", {}):
            settings.train.ema = 0.0  # written before the weight average existed: it goes on without one
        for key, value in budget.items():
            setattr(settings.train, key, value)
    else:
        assert settings is not None
        run_dir = new_run_dir(settings.corpus, name, out)
    tc = settings.train
    if not (tc.steps or tc.time_s or tc.epochs):
        tc.time_s = DEFAULT_TIME_BUDGET_S
    validate_settings(settings)

    device = pick_device(tc.device)
    if device.type == "cpu":
        set_cpu_threads(tc.threads, dist.world)
    torch.manual_seed(tc.seed + dist.rank)

    tokenizer = None
    if ck is not None:
        from charnn.text.tokenizers import tokenizer_from_state

        tokenizer = tokenizer_from_state(ck["tokenizer"])
    mc = settings.model if ck is None else ModelConfig.from_dict(ck["model_config"])
    if settings.mode == "lm":
        vocab = tokenizer.vocab_size if tokenizer else settings.tokenizer.vocab_size or 256
        memory.check_model_fits(mc.cell, mc.layers, mc.hidden, mc.embedding_dim, vocab, mc.tie_weights, device)
    if not dist.is_main:  # rank 0 tokenizes and fills the cache once; the others then read it
        distributed.barrier(dist)
    task = _make_task(settings, device, dist, tokenizer, ck["model_config"] if ck else None)
    if dist.is_main:
        distributed.barrier(dist)
    model = task.model
    main = dist.is_main
    if settings.mode == "lm":
        memory.check_batch_fits(model, mc.cell, mc.layers, mc.hidden, mc.embedding_dim, task.tokenizer.vocab_size,
                                tc.batch_size // dist.world, tc.seq_len, device)
    if main:
        check_writable(run_dir)

    optimizer = adamw(model, tc.lr, tc.weight_decay, device)
    average = WeightAverage(model, tc.ema) if tc.ema else None
    scaler = grad_scaler(device, tc.bf16)
    step, tokens_seen, elapsed0, best, bad_evals, lr_scale = 0, 0, 0.0, math.inf, 0, 1.0
    # the closing evaluation's score over the whole held-out text, set when one runs (periodic ones
    # read a slice of it, so best_val_bpc is not comparable with it); not carried over a resume.
    # best_held_out: the same, only when best.pt holds that closing model (the one generate, chat
    # and the model lists use), so that run.json and Done never name the score of another model
    held_out = best_held_out = None
    resume_weights = None
    history: dict[str, list] = {"train_loss": [], "eval": []}
    if ck is not None:
        model.load_state_dict(ck.get("resume_weights") or ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        if ck.get("grad_scaler"):
            scaler.load_state_dict(ck["grad_scaler"])
        if average and ck.get("weight_average"):
            average.load_state_dict(ck["weight_average"])
        step, tokens_seen = ck["step"], ck["tokens_seen"]
        elapsed0, best, bad_evals = ck["elapsed_s"], ck["best_val_bpc"], ck["bad_evals"]
        lr_scale = ck.get("lr_scale", 1.0)
        history = {k: list(v) for k, v in ck["history"].items()}
        task.load_state_dict(ck["task_state"])
        torch.set_rng_state(ck["rng"]["torch"])
        if device.type == "cuda" and ck["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(ck["rng"]["cuda"])
    train_model = distributed.wrap(model, dist, device)
    autocast = bf16_autocast(device, tc.bf16)

    if main:
        yield Start(
            run_dir=str(run_dir), run_name=run_dir.name, mode=settings.mode, device=describe(device),
            parameters=sum(p.numel() for p in model.parameters()),
            train_tokens=task.summary()["train_tokens"], val_tokens=task.summary()["val_tokens"],
            vocab_size=task.tokenizer.vocab_size, tokenizer=task.tokenizer.kind,
            budget=describe_budget(tc), settings=settings.to_dict(), resumed_step=step,
        )
        for note in task.notices:
            yield Notice(note)

    def payload(kind: str) -> dict:
        return {
            "kind": settings.mode,
            "run_name": run_dir.name,
            "settings": settings.to_dict(),
            "model_config": task.model_config.to_dict(),
            "tokenizer": task.tokenizer.to_state(),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "grad_scaler": scaler.state_dict(),
            "weight_average": average.state_dict() if average else None,
            "resume_weights": resume_weights,  # None unless "model" holds the average
            "step": step,
            "tokens_seen": tokens_seen,
            "elapsed_s": clock.elapsed(),
            "best_val_bpc": best,
            "held_out_bpc": held_out,
            "bad_evals": bad_evals,
            "lr_scale": lr_scale,
            "task_state": task.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            },
            "history": history,
            "corpus": {"path": str(settings.corpus), **task.summary()},
            "saved_as": kind,
        }

    def save(kinds: list[str]) -> Iterator[Event]:
        if not main:
            return
        data = payload(kinds[0])
        for kind in kinds:
            path = save_checkpoint(run_dir / f"{kind}.pt", data)
            yield Checkpoint(step=step, path=str(path), kind=kind)
        # the same summary an export writes beside its checkpoint, with the run's listed score
        write_json_atomic(run_dir / "run.json", {
            **summary(data, run_dir.name),
            "best_val_bpc": best if math.isfinite(best) else None, "held_out_bpc": best_held_out,
            "updated": time.time(),
        })

    # evaluation cadence: by steps when asked or budgeted, else by wall clock
    windows = getattr(getattr(task, "batcher", None), "windows", 0) or 1000
    if tc.eval_every:
        eval_steps, eval_secs = tc.eval_every, 0.0
    elif tc.steps:
        eval_steps, eval_secs = max(1, tc.steps // 10), 0.0
    elif tc.time_s:
        eval_steps, eval_secs = 0, min(max(tc.time_s / 8, 10.0), 120.0)
    else:
        eval_steps, eval_secs = max(1, int(windows * tc.epochs / 10) or windows // 4), 0.0
    sample_steps = tc.sample_every
    max_steps = tc.steps or (int(math.ceil(tc.epochs * windows)) if tc.epochs else 0)

    clock = _Clock(elapsed0)
    paused = 0.0  # seconds spent evaluating, excluded from throughput
    last_emit = -1.0
    last_eval_t = clock.elapsed()
    window_loss, window_steps, window_tokens, window_t0 = 0.0, 0, 0, clock.elapsed()
    rate = 0.0
    snapshot = None
    nan_failures = 0
    reason = "budget"
    start_step, start_tokens = step, tokens_seen
    train_model.train()

    def progress() -> float:
        fr = []
        if max_steps:
            fr.append(step / max_steps)
        if tc.time_s:
            fr.append(clock.elapsed() / tc.time_s)
        return min(1.0, max(fr) if fr else 0.0)

    def take_snapshot() -> None:
        """The last good state, to roll back to when the loss turns NaN or infinite."""
        nonlocal snapshot, nan_failures
        snapshot = (copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict()), task.state_dict(),
                    average.state_dict() if average else None)
        nan_failures = 0

    def restore_snapshot() -> None:
        model.load_state_dict(snapshot[0])
        optimizer.load_state_dict(snapshot[1])
        task.load_state_dict(snapshot[2])
        if average:
            average.load_state_dict(snapshot[3])

    def after_out_of_memory(error: BaseException) -> Iterator[Event]:
        """Retry at half the batch (one process), or stop saying what would fit."""
        if device.type == "cuda":
            torch.cuda.empty_cache()
        b, t = tc.batch_size, tc.seq_len
        shrink = getattr(task, "shrink_batch", None)
        smaller = shrink() if shrink is not None and not dist.enabled else None
        where = "GPU memory" if device.type == "cuda" else "memory"
        if smaller is None:
            fits = f"--batch-size {b // 2}" if b > 1 else f"--seq-len {max(1, t // 2)}"
            raise CharnnError(f"Out of {where} at --batch-size {b} --seq-len {t}; try {fits} or a smaller "
                              f"--hidden.")
        if main:
            yield Notice(f"Out of {where} at --batch-size {b} --seq-len {t}: retrying automatically at "
                         f"--batch-size {smaller}.")

    def run_eval(final: bool, quick: bool = False) -> Iterator[Event]:
        nonlocal best, bad_evals, paused, held_out, best_held_out
        t0 = time.perf_counter()
        # a user who stopped the run wants it back now: a short evaluation, not the full one
        closing = final and not quick
        val_loss, val_bpc = task.evaluate(model, FINAL_EVAL_TOKENS if closing else tc.eval_tokens, final=closing)
        # best.pt is chosen by the periodic measure (a slice of the held-out text, read in the
        # training shape), so the closing model is compared on that slice too, like with like
        compared = val_bpc
        if closing:
            held_out = val_bpc
            compared = task.evaluate(model, tc.eval_tokens)[1]
        improved = compared < best - 1e-6
        if improved:
            best, bad_evals = compared, 0
            best_held_out = held_out if closing else None
        else:
            bad_evals += 1
        history["eval"].append([step, val_loss, val_bpc])
        recent = history["train_loss"][-50:]
        train_bpc = task.bpc(sum(recent) / len(recent)) if recent else None
        if main:
            yield Eval(step=step, val_loss=val_loss, val_bpc=val_bpc, best_val_bpc=best,
                       improved=improved, train_bpc=train_bpc, final=final)
            if tc.sample_length and not sample_steps and not final:
                yield Sample(step=step, text=task.sample(model, step, tc.sample_length, tc.seed), val_bpc=val_bpc)
        take_snapshot()
        yield from save(["last", "best"] if improved else ["last"])
        paused += time.perf_counter() - t0

    take_snapshot()
    try:
        while True:
            # budgets
            if max_steps and step >= max_steps:
                break
            # decided together, so that every rank leaves the loop at the same step
            time_up, stopping = distributed.any_ranks(
                [bool(tc.time_s and clock.elapsed() >= tc.time_s), bool(stop and stop.is_set())], dist, device)
            if time_up:
                break
            if stopping:
                reason = "stopped"
                break

            lr = lr_at(step, progress(), tc) * lr_scale
            for group in optimizer.param_groups:
                group["lr"] = lr
            try:
                with autocast:
                    loss = task.train_loss(train_model, step)
                # the mean over ranks: what is reported, and NaN on one rank stops all of them
                loss_value = distributed.mean(float(loss.detach()), dist, device)
                finite = math.isfinite(loss_value)
                optimizer.zero_grad(set_to_none=True)
                if finite:
                    scaler.scale(loss).backward()
                    if tc.grad_clip:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                    if average:
                        average.update()
            except Exception as e:  # noqa: BLE001 - only out-of-memory is handled; the rest re-raised
                if not memory.is_out_of_memory(e):
                    raise
                loss = None
                optimizer.zero_grad(set_to_none=True)
                yield from after_out_of_memory(e)
                continue
            if not finite:
                nan_failures += 1
                loss = None
                restore_snapshot()
                if nan_failures > MAX_NAN_RETRIES:
                    reason = "failed"
                    yield from save(["last"])
                    if main:
                        yield Error(f"Loss became {loss_value} at step {step + 1} again after {MAX_NAN_RETRIES} "
                                    f"rollbacks; stopped with the last good state saved in "
                                    f"{run_dir / 'last.pt'}; try a lower --lr.")
                    break
                lr_scale *= 0.5
                if main:
                    yield Notice(f"Loss became {loss_value} at step {step + 1}: rolled back to the last "
                                 f"good state and halved the learning rate (x{lr_scale:g}).")
                continue
            step += 1
            tokens_seen += task.tokens_per_step
            history["train_loss"].append(loss_value)
            window_loss += loss_value
            window_steps += 1
            window_tokens += task.tokens_per_step

            now = clock.elapsed()
            if main and (now - last_emit >= 0.25 or step == start_step + 1):
                span = max(now - window_t0 - paused, 1e-9)
                rate = window_tokens / span if step > start_step + 1 else 0.0
                mean_loss = window_loss / window_steps
                eta = None
                if rate > 0:
                    etas = []
                    if max_steps:
                        per_step = (tokens_seen - start_tokens) / max(step - start_step, 1)  # chat: varies
                        etas.append((max_steps - step) * per_step / rate)
                    if tc.time_s:
                        etas.append(max(0.0, tc.time_s - now))
                    eta = min(etas) if etas else None
                yield Step(step=step, epoch=task.epoch(step), loss=mean_loss, bpc=task.bpc(mean_loss),
                           lr=lr, tokens_per_s=rate, elapsed_s=now, eta_s=eta, progress=progress(),
                           tokens=tokens_seen, teacher_forcing=getattr(task, "teacher_forcing", None),
                           gpu_mem_mib=torch.cuda.max_memory_allocated(device) / 2**20
                           if device.type == "cuda" else None)
                last_emit = now
                window_loss, window_steps, window_tokens, window_t0, paused = 0.0, 0, 0, now, 0.0

            due = bool(eval_steps and step % eval_steps == 0)
            if eval_secs:  # wall clocks differ between ranks; rank 0's decision holds for all
                due = distributed.any_ranks([bool(now - last_eval_t >= eval_secs and main)], dist, device)[0]
            if due:
                yield from run_eval(final=False)
                last_eval_t = clock.elapsed()
                if tc.patience and bad_evals >= tc.patience:
                    reason = "early-stop"
                    if main:
                        yield Notice(f"Validation loss has not improved for {bad_evals} evaluations; stopping early.")
                    break
            if sample_steps and step % sample_steps == 0 and main and tc.sample_length:
                yield Sample(step=step, text=task.sample(model, step, tc.sample_length, tc.seed),
                             val_bpc=history["eval"][-1][2] if history["eval"] else None)
    except KeyboardInterrupt:
        reason = "interrupted"

    total = clock.elapsed()
    if reason != "failed":
        if reason in ("stopped", "interrupted") and step > start_step:
            yield from save(["last"])  # resumable at once, even if the final evaluation is cut short
        if average and step > start_step and reason in ("budget", "early-stop"):
            # a finished run leaves the averaged weights as its model; the last ones stay in the
            # checkpoint to resume from (a stopped run keeps only those, as they are)
            resume_weights = copy.deepcopy(model.state_dict())
            average.copy_to_model()
        if step > start_step or not history["eval"]:
            yield from run_eval(final=True, quick=reason in ("stopped", "interrupted"))
        else:
            yield from save(["last"])
    trained = max(total - elapsed0, 1e-9)
    if main:
        yield Done(step=step, reason=reason, best_val_bpc=best if math.isfinite(best) else None,
                   run_dir=str(run_dir), elapsed_s=total, held_out_bpc=best_held_out,
                   tokens_per_s=(tokens_seen - start_tokens) / trained)  # chat batches vary in size
