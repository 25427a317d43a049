"""The training loop, as a generator of events.

``train_stream`` builds a task (language model or chat), trains it under a
budget of steps / wall-clock time / epochs, and yields ``Start``, ``Step``,
``Eval``, ``Sample``, ``Checkpoint``, ``Notice`` and ``Done`` events. It checks
``stop`` every step, so a UI or a signal handler can end it cleanly: the run is
then saved and can be resumed with the same loss curve it would have had.

The loop (``_Run.train``) reads top to bottom; each concern is a named part:
the budget and evaluation cadence and the throughput / ETA (``cadence``), the
run's position and the NaN rollback (``loop_state``), the weight average
(``averaging``), decisions all ranks share (``distributed.Agreement``), and the
task itself (``task.Task``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Protocol

import torch

from charnn.config import RunSettings
from charnn.presets import finish_settings
from charnn.runtime.checkpoint import (
    CheckpointData,
    read_checkpoint,
    save_checkpoint,
    summary,
    write_json_atomic,
)
from charnn.runtime.device import bf16_autocast, describe, pick_device, set_cpu_threads
from charnn.runtime.runs import resolve_run_dir
from charnn.training import distributed, memory
from charnn.training.averaging import WeightAverage
from charnn.training.cadence import Cadence, Clock, Throughput, describe_budget
from charnn.training.events import Checkpoint, Done, Error, Eval, Event, Notice, Sample, Start, Step
from charnn.training.loop_state import Progress, Snapshot
from charnn.training.optim import adamw
from charnn.training.run_dir import check_writable, new_run_dir
from charnn.training.schedule import lr_at
from charnn.training.task import Task, check_model_fits, make_task

MAX_NAN_RETRIES = 3
FINAL_EVAL_TOKENS = 1 << 20

__all__ = ["MAX_NAN_RETRIES", "StopFlag", "check_writable", "describe_budget", "new_run_dir", "train_stream"]


class StopFlag(Protocol):
    def is_set(self) -> bool: ...


def grad_scaler(device, autocast: bool):
    """Loss scaling where training runs in fp16 (cuDNN's LSTM under autocast, whatever its dtype:
    benchmarks/README.md). Dynamic: a step whose gradients overflow is skipped and the scale halved."""
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
        if resume:
            run_dir = resolve_run_dir(resume)
            ck = read_checkpoint(run_dir / "last.pt")
            settings = _resumed_settings(ck, budget or {})
        else:
            assert settings is not None
            run_dir, ck = new_run_dir(settings.corpus, name, out), None
        finish_settings(settings)
        yield from _Run(settings, run_dir, ck, dist).train(stop)
    finally:
        distributed.teardown(dist)


def _resumed_settings(ck: CheckpointData, budget: dict) -> RunSettings:
    settings = RunSettings.from_dict(ck.settings)
    if ck.trained_without_average:
        settings.train.ema = 0.0
    for key, value in budget.items():
        setattr(settings.train, key, value)
    return settings


class _Run:
    """One training run: its parts, built once, and the loop over them."""

    def __init__(self, settings: RunSettings, run_dir: Path, ck: CheckpointData | None, dist):
        self.settings, self.run_dir, self.dist = settings, run_dir, dist
        self.tc = tc = settings.train
        self.main = dist.is_main
        self.device = device = pick_device(tc.device)
        if device.type == "cpu":
            set_cpu_threads(tc.threads, dist.world)
        torch.manual_seed(tc.seed + dist.rank)
        self.task = self._build_task(ck)
        self.model = self.task.model
        if self.main:
            check_writable(run_dir)
        self.optimizer = adamw(self.model, tc.lr, tc.weight_decay, device)
        self.average = WeightAverage(self.model, tc.ema) if tc.ema else None
        self.scaler = grad_scaler(device, tc.bf16)
        self.progress = Progress() if ck is None else self._resume(ck)
        self.start_step, self.start_tokens = self.progress.step, self.progress.tokens_seen
        self.resume_weights: dict | None = None  # the last weights, once the average has replaced them
        self.train_model = distributed.wrap(self.model, dist, device)
        self.autocast = bf16_autocast(device, tc.bf16)
        self.agree = distributed.Agreement(dist, device)
        self.lr = tc.lr

    def _build_task(self, ck: CheckpointData | None) -> Task:
        tokenizer = None
        if ck is not None:
            from charnn.text.tokenizers import tokenizer_from_state

            tokenizer = tokenizer_from_state(ck.tokenizer)
        model_config = ck.model_config if ck else None
        self.init_from = ck.init_from if ck else None
        start = None
        if ck is None and self.settings.init_from:  # fine-tuning: the shape and tokens of the model started from
            from charnn.training.init_from import StartingModel

            start = StartingModel.load(self.settings)
            tokenizer, model_config, self.init_from = start.tokenizer, start.model_config, start.record()
        check_model_fits(self.settings, model_config, tokenizer, self.device)
        dist = self.dist
        if not dist.is_main:  # rank 0 tokenizes and fills the cache once; the others then read it
            distributed.barrier(dist)
        task = make_task(self.settings, self.device, dist.rank, dist.world, tokenizer, model_config)
        if dist.is_main:
            distributed.barrier(dist)
        if start is not None:
            start.load_into(task.model)
            task.notices[:0] = start.notices
        task.check_batch_fits()
        return task

    def _resume(self, ck: CheckpointData) -> Progress:
        self.model.load_state_dict(ck.training_weights)
        self.optimizer.load_state_dict(ck.optimizer)
        if ck.grad_scaler:
            self.scaler.load_state_dict(ck.grad_scaler)
        if self.average and ck.weight_average:
            self.average.load_state_dict(ck.weight_average)
        self.task.load_state_dict(ck.task_state)
        torch.set_rng_state(ck.rng["torch"])
        if self.device.type == "cuda" and ck.rng.get("cuda") is not None:
            torch.cuda.set_rng_state(ck.rng["cuda"])
        return Progress.from_checkpoint(ck)

    # -- the loop ---------------------------------------------------------------
    def train(self, stop: StopFlag | None) -> Iterator[Event]:
        if self.main:
            yield self._start_event()
            for note in self.task.notices:
                yield Notice(note)
        self.cadence = Cadence(self.tc, self.task.windows, fresh=not self.progress.history["eval"])
        self.clock = Clock(self.progress.elapsed_s)
        self.cadence.last_eval_s = self.clock.elapsed()
        self.meter = Throughput(self.start_step, self.start_tokens, self.clock.elapsed())
        self.train_model.train()
        self.snapshot = Snapshot(self.model, self.optimizer, self.task, self.average)
        reason = yield from self._loop(stop)
        yield from self._finish(reason)

    def _loop(self, stop: StopFlag | None) -> Generator[Event, None, str]:
        """Train until a budget, the stop flag, patience or repeated NaN ends it; the reason why."""
        p, cadence = self.progress, self.cadence
        try:
            while not cadence.steps_done(p.step):
                time_up, stopping = self.agree.any(cadence.time_up(self.clock.elapsed()),
                                                   bool(stop and stop.is_set()))
                if time_up or stopping:
                    return "stopped" if stopping and not time_up else "budget"
                outcome = yield from self._step()
                if outcome == "retry":
                    continue
                if outcome == "failed":
                    return "failed"
                if p.step == self.start_step + 1:
                    cadence.last_eval_s = self.clock.elapsed()  # gaps count from the first step
                if self.main and self.meter.due(p.step, self.clock.elapsed()):
                    yield self._step_event()
                if (yield from self._evaluate_if_due()):
                    return "early-stop"
                if cadence.sample_due(p.step) and self.main and self.tc.sample_length:
                    yield Sample(step=p.step, text=self._sample(), val_bpc=p.last_val_bpc())
        except KeyboardInterrupt:
            return "interrupted"
        return "budget"

    def _step(self) -> Generator[Event, None, str]:
        """One optimizer step: "ok", or "retry" after a rollback or a smaller batch, or "failed"."""
        p = self.progress
        self.lr = lr_at(p.step, self.cadence.fraction_done(p.step, self.clock.elapsed()), self.tc) * p.lr_scale
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        try:
            loss = self._forward_backward()
        except Exception as e:  # noqa: BLE001 - only out-of-memory is handled; the rest re-raised
            if not memory.is_out_of_memory(e):
                raise
            loss = None
        if loss is None:
            self.optimizer.zero_grad(set_to_none=True)
            yield from self._after_out_of_memory()
            return "retry"
        if not math.isfinite(loss):
            return (yield from self._roll_back(loss))
        p.step += 1
        p.tokens_seen += self.task.tokens_per_step
        p.history["train_loss"].append(loss)
        self.meter.add(loss, self.task.tokens_per_step)
        return "ok"

    def _forward_backward(self) -> float:
        """The step's loss, the mean over ranks (NaN on one stops all); the weights move only when it is finite."""
        with self.autocast:
            loss = self.task.train_loss(self.train_model, self.progress.step)
        value = self.agree.mean(float(loss.detach()))
        self.optimizer.zero_grad(set_to_none=True)
        if math.isfinite(value):
            self.scaler.scale(loss).backward()
            if self.tc.grad_clip:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.tc.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.average:
                self.average.update()
        return value

    def _roll_back(self, loss: float) -> Generator[Event, None, str]:
        """After a NaN or infinite loss: back to the last good state at half the learning rate, or give up."""
        p, at = self.progress, self.progress.step + 1
        self.snapshot.restore()
        if self.snapshot.failures > MAX_NAN_RETRIES:
            yield from self._save(["last"])
            if self.main:
                yield Error(f"Loss became {loss} at step {at} again after {MAX_NAN_RETRIES} rollbacks; stopped "
                            f"with the last good state saved in {self.run_dir / 'last.pt'}; try a lower --lr.")
            return "failed"
        p.lr_scale *= 0.5
        if self.main:
            yield Notice(f"Loss became {loss} at step {at}: rolled back to the last good state and halved the "
                         f"learning rate (x{p.lr_scale:g}).")
        return "retry"

    def _after_out_of_memory(self) -> Iterator[Event]:
        """Retry at half the batch (one process), or stop saying what would fit."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        b, t = self.tc.batch_size, self.tc.seq_len
        smaller = None if self.dist.enabled else self.task.shrink_batch()
        where = "GPU memory" if self.device.type == "cuda" else "memory"
        if smaller is None:
            from charnn.errors import CharnnError

            fits = f"--batch-size {b // 2}" if b > 1 else f"--seq-len {max(1, t // 2)}"
            raise CharnnError(f"Out of {where} at --batch-size {b} --seq-len {t}; try {fits} or a smaller "
                              f"--hidden.")
        if self.main:
            yield Notice(f"Out of {where} at --batch-size {b} --seq-len {t}: retrying automatically at "
                         f"--batch-size {smaller}.")

    def _evaluate_if_due(self) -> Generator[Event, None, bool]:
        """Evaluate when the cadence says so; True when patience has run out."""
        cadence, p = self.cadence, self.progress
        if cadence.eval_secs:
            due = self.agree.main_decides(cadence.eval_due_by_clock(self.clock.elapsed()))
        else:
            due = cadence.eval_due_by_steps(p.step)
        if not due:
            return False
        yield from self._evaluate(final=False, share=cadence.share)
        cadence.evaluated(self.clock.elapsed())
        if self.tc.patience and p.bad_evals >= self.tc.patience:
            if self.main:
                yield Notice(f"Validation loss has not improved for {p.bad_evals} evaluations; stopping early.")
            return True
        return False

    def _evaluate(self, final: bool, quick: bool = False, share: float = 1.0) -> Iterator[Event]:
        """An evaluation, its sample and a save; ``quick``: a stopped run's short closing one; ``share``
        below 1: an early one, reading that share of the slice, that does not compete for best.pt."""
        t0, p, tc = time.perf_counter(), self.progress, self.tc
        closing = final and not quick
        tokens = FINAL_EVAL_TOKENS if closing else tc.eval_tokens
        if share < 1 and tokens:
            tokens = max(2, round(tokens * share))
        val_loss, val_bpc = self.task.evaluate(self.model, tokens, final=closing)
        # best.pt is chosen on a slice of the held-out text, so the closing model is compared on it too
        compared = val_bpc
        if closing:
            p.held_out = val_bpc
            compared = self.task.evaluate(self.model, tc.eval_tokens)[1]
        improved = p.record_eval(val_loss, val_bpc, compared, closing, ranked=share >= 1)
        recent = p.recent_train_loss()
        if self.main:
            yield Eval(step=p.step, val_loss=val_loss, val_bpc=val_bpc, best_val_bpc=p.best, improved=improved,
                       train_bpc=self.task.bpc(recent) if recent is not None else None, final=final)
            if tc.sample_length and not self.cadence.sample_steps and not final:
                yield Sample(step=p.step, text=self._sample(), val_bpc=val_bpc)
        self.snapshot.take()
        yield from self._save(["last", "best"] if improved else ["last"])
        self.meter.paused += time.perf_counter() - t0

    def _finish(self, reason: str) -> Iterator[Event]:
        total, p = self.clock.elapsed(), self.progress
        trained = p.step > self.start_step
        if reason != "failed":
            if reason in ("stopped", "interrupted") and trained:
                yield from self._save(["last"])  # resumable at once, even if the final evaluation is cut short
            if self.average and trained and reason in ("budget", "early-stop"):
                # a finished run leaves the average as its model; a stopped one keeps its last weights
                self.resume_weights = self.average.swap_into(self.model)
            if trained or not p.history["eval"]:
                yield from self._evaluate(final=True, quick=reason in ("stopped", "interrupted"))
            else:
                yield from self._save(["last"])
        if self.main:
            yield Done(step=p.step, reason=reason, best_val_bpc=p.best_or_none(), run_dir=str(self.run_dir),
                       elapsed_s=total, held_out_bpc=p.best_held_out,
                       tokens_per_s=(p.tokens_seen - self.start_tokens) / max(total - p.elapsed_s, 1e-9))

    # -- events and saves ---------------------------------------------------------
    def _start_event(self) -> Start:
        task, tc = self.task, self.tc
        return Start(
            run_dir=str(self.run_dir), run_name=self.run_dir.name, mode=self.settings.mode,
            device=describe(self.device), parameters=sum(p.numel() for p in self.model.parameters()),
            train_tokens=task.summary()["train_tokens"], val_tokens=task.summary()["val_tokens"],
            vocab_size=task.tokenizer.vocab_size, tokenizer=task.tokenizer.kind,
            budget=describe_budget(tc), settings=self.settings.to_dict(), resumed_step=self.progress.step,
        )

    def _step_event(self) -> Step:
        p, now = self.progress, self.clock.elapsed()
        mean_loss, rate, eta = self.meter.report(p.step, p.tokens_seen, now, self.cadence)
        gpu = self.device.type == "cuda"
        return Step(step=p.step, epoch=self.task.epoch(p.step), loss=mean_loss, bpc=self.task.bpc(mean_loss),
                    lr=self.lr, tokens_per_s=rate, elapsed_s=now, eta_s=eta,
                    progress=self.cadence.fraction_done(p.step, self.clock.elapsed()), tokens=p.tokens_seen,
                    teacher_forcing=self.task.teacher_forcing,
                    gpu_mem_mib=torch.cuda.max_memory_allocated(self.device) / 2**20 if gpu else None)

    def _sample(self) -> str:
        return self.task.sample(self.model, self.progress.step, self.tc.sample_length, self.tc.seed)

    def _checkpoint(self, kind: str) -> CheckpointData:
        p, task, average, device = self.progress, self.task, self.average, self.device
        return CheckpointData(
            kind=self.settings.mode, run_name=self.run_dir.name, settings=self.settings.to_dict(),
            model_config=task.model_config.to_dict(), tokenizer=task.tokenizer.to_state(),
            model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
            grad_scaler=self.scaler.state_dict(), weight_average=average.state_dict() if average else None,
            resume_weights=self.resume_weights, step=p.step, tokens_seen=p.tokens_seen,
            elapsed_s=self.clock.elapsed(), best_val_bpc=p.best, held_out_bpc=p.held_out, bad_evals=p.bad_evals,
            lr_scale=p.lr_scale, task_state=task.state_dict(),
            rng={"torch": torch.get_rng_state(),
                 "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None},
            history=p.history, corpus={"path": str(self.settings.corpus), **task.summary()}, saved_as=kind,
            init_from=self.init_from,
        )

    def _save(self, kinds: list[str]) -> Iterator[Event]:
        if not self.main:
            return
        ck = self._checkpoint(kinds[0])
        data = ck.to_payload()
        for kind in kinds:
            path = save_checkpoint(self.run_dir / f"{kind}.pt", data)
            yield Checkpoint(step=self.progress.step, path=str(path), kind=kind)
        # the same summary an export writes beside its checkpoint, with the run's listed score
        write_json_atomic(self.run_dir / "run.json", {
            **summary(ck, self.run_dir.name), "best_val_bpc": self.progress.best_or_none(),
            "held_out_bpc": self.progress.best_held_out, "updated": time.time(),
        })
