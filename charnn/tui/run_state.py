"""What the TUI knows about a training run, folded from its events (no UI code here)."""

from __future__ import annotations

from dataclasses import dataclass, field

from charnn.report import fmt_count, score
from charnn.training.events import Checkpoint, Done, Error, Eval, Event, Notice, Sample, Start, Step
from charnn.tui.training_process import TrainingProcess

DONE_WORDS = {
    "budget": "finished",
    "stopped": "stopped",
    "early-stop": "stopped early",
    "interrupted": "interrupted",
    "failed": "failed",
}


@dataclass
class RunState:
    status: str = "idle"  # idle | starting | training | paused | stopping | evaluating | done | failed
    run_name: str = ""
    run_dir: str = ""
    device: str = ""
    mode: str = "lm"
    parameters: int = 0
    tokenizer: str = ""
    vocab_size: int = 0
    budget: str = ""
    layers: int = 0
    hidden: int = 0
    cell: str = ""
    step: int = 0
    epoch: float = 0.0
    train_bpc: float | None = None
    val_bpc: float | None = None
    best_val_bpc: float | None = None
    held_out_bpc: float | None = None  # from Done: best.pt's closing score, when it has one
    tokens_per_s: float = 0.0
    gpu_mem_mib: float | None = None
    elapsed_s: float = 0.0
    eta_s: float | None = None
    progress: float = 0.0
    lr: float = 0.0
    tokens: int = 0
    last_checkpoint: str = ""
    done_reason: str = ""
    samples: int = 0
    following: bool = False  # watching a run this TUI cannot control
    saved_while_stopping: bool = False
    notices: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.status in ("starting", "training", "paused", "stopping")

    def apply(self, e: Event) -> None:
        if isinstance(e, Start):
            self.run_name, self.run_dir, self.device, self.mode = e.run_name, e.run_dir, e.device, e.mode
            self.parameters, self.tokenizer, self.vocab_size, self.budget = (
                e.parameters, e.tokenizer, e.vocab_size, e.budget)
            model = e.settings.get("model", {}) if isinstance(e.settings, dict) else {}
            self.layers, self.hidden, self.cell = model.get("layers", 0), model.get("hidden", 0), model.get("cell", "")
            self.step = e.resumed_step
            self.done_reason = ""
            if self.status not in ("paused", "stopping"):
                self.status = "training"
        elif isinstance(e, Step):
            self.step, self.epoch, self.train_bpc, self.lr = e.step, e.epoch, e.bpc, e.lr
            self.tokens_per_s, self.elapsed_s, self.eta_s = e.tokens_per_s, e.elapsed_s, e.eta_s
            self.gpu_mem_mib = e.gpu_mem_mib
            self.progress, self.tokens = e.progress, e.tokens
            if self.status == "starting":
                self.status = "training"
        elif isinstance(e, Eval):
            self.val_bpc, self.best_val_bpc = e.val_bpc, e.best_val_bpc
            self.step = max(self.step, e.step)
            if e.train_bpc is not None and self.train_bpc is None:
                self.train_bpc = e.train_bpc
        elif isinstance(e, Sample):
            self.samples += 1
        elif isinstance(e, Checkpoint):
            self.last_checkpoint = e.path
            self.saved_while_stopping = self.status == "stopping"
        elif isinstance(e, Notice):
            self.notices.append(e.message)
        elif isinstance(e, Done):
            self.status = "failed" if e.reason == "failed" else "done"
            self.done_reason = e.reason
            self.step = e.step
            self.elapsed_s = e.elapsed_s
            self.eta_s = None
            if e.best_val_bpc is not None:
                self.best_val_bpc = e.best_val_bpc
            self.held_out_bpc = e.held_out_bpc
            if e.reason == "budget":
                self.progress = 1.0
        elif isinstance(e, Error):
            self.status = "failed"
            self.done_reason = "error"

    @property
    def status_text(self) -> str:
        if self.status == "done":
            return DONE_WORDS.get(self.done_reason, self.done_reason or "done")
        if self.status == "failed":
            return "failed"
        if self.status == "stopping" and self.saved_while_stopping:
            return "saved · final eval…"
        if self.status == "training" and self.following:
            return "training (watching)"
        return self.status

    def status_line(self) -> str:
        """The run in one line, for the top bar of every screen."""
        if self.status == "idle":
            return ""
        parts = [f"● {self.status_text}", f"step {self.step:,}"]
        if self.status == "done" and (figure := score(self.held_out_bpc, self.best_val_bpc)):
            parts.append(figure)  # what the run leaves, as the model lists show it
        elif self.train_bpc is not None:
            parts.append(f"{self.train_bpc:.2f} bpc")
        if self.tokens_per_s and self.active:
            parts.append(f"{fmt_count(self.tokens_per_s)} tok/s")
        return " · ".join(parts)


@dataclass
class Training:
    """The app's training run, which the screens read: its child process (None when nothing is
    followed) and what its events have said so far."""

    state: RunState = field(default_factory=RunState)
    process: TrainingProcess | None = None

    @property
    def controllable(self) -> bool:
        """A run this app can pause and stop (it is training, and its trainer is alive and ours to signal)."""
        proc = self.process
        return proc is not None and self.state.active and proc.controllable
