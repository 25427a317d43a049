"""Starting a run from a trained model (``charnn train --init-from``): its weights, shape and tokenizer.

The model's architecture and tokenizer come from its checkpoint (``presets.apply_finetune`` sets the
run's settings to match). A character model meeting characters it never saw grows its vocabulary:
the new characters get ids after the old ones, and their embedding and output rows start as the mean
of the existing rows, so a new character begins as "an average character" rather than as noise. A
subword model keeps its tokenizer (byte fallback spells what it has no piece for) and says how much
of the text that is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from charnn.config import RunSettings
from charnn.errors import CharnnError
from charnn.presets import FineTuneBase, check_mode_fits_base, describe_finetune
from charnn.runtime.checkpoint import CheckpointData, read_checkpoint
from charnn.text.tokenizers import SPM_PIECE_SPACE, CharTokenizer, Tokenizer, tokenizer_from_state

# the weights indexed by token id, in both kinds of model: they grow with the vocabulary
VOCAB_ROWS = ("embed.weight", "head.weight", "head.bias")
COVERAGE_SAMPLE_CHARS = 4_000_000  # a subword tokenizer's coverage is measured on the text's start
SHOWN_CHARS = 24  # new or uncovered characters named in a notice


def base_record(path: Path, ck: CheckpointData) -> FineTuneBase:
    """The plain facts the settings policy needs about a checkpoint to start from."""
    tok = ck.tokenizer
    vocab = int(ck.model_config.get("vocab_size") or 0)
    return FineTuneBase(name=ck.run_name or path.stem, path=str(path), kind=ck.kind,
                        model_config=dict(ck.model_config), tokenizer=str(tok.get("kind", "char")),
                        vocab_size=vocab)


def read_base(path: str | Path, mode: str) -> tuple[FineTuneBase, CheckpointData]:
    """The checkpoint a run starts from, refused in one sentence if it is damaged or of the other kind."""
    path = Path(path)
    ck = read_checkpoint(path)
    if not (ck.model_config and ck.tokenizer and ck.model):
        raise CharnnError(f"{path} is damaged or incomplete (it lacks its weights, settings or tokenizer); "
                          f"it cannot be fine-tuned.")
    base = base_record(path, ck)
    check_mode_fits_base(mode, base)
    return base, ck


@dataclass
class StartingModel:
    """A run's starting point, fitted to its text: the tokenizer (grown if need be) and model config."""

    base: FineTuneBase
    base_step: int
    weights: dict
    tokenizer: Tokenizer
    model_config: dict
    added: str = ""  # characters added to a character vocabulary
    notices: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, settings: RunSettings) -> StartingModel:
        base, ck = read_base(settings.init_from, settings.mode)
        try:
            tokenizer = tokenizer_from_state(ck.tokenizer)
        except (KeyError, TypeError, ValueError, RuntimeError):
            raise CharnnError(f"{base.path} is damaged or incomplete (its tokenizer cannot be read); it cannot "
                              f"be fine-tuned.") from None
        start = cls(base, ck.step, ck.model, tokenizer, _model_config(ck.model_config, settings))
        start.notices.append(describe_finetune(settings, base))
        if isinstance(tokenizer, CharTokenizer):
            start._grow(_characters(settings))
        else:
            start.notices.append(_coverage(base, tokenizer, _sample(settings)))
        return start

    def _grow(self, characters: set[str]) -> None:
        tok = self.tokenizer
        new = "".join(sorted(characters - set(tok.chars)))
        if not new:
            return
        self.added = new
        self.tokenizer = CharTokenizer(tok.chars + new, tok.specials)
        self.notices.append(
            f"The text has {len(new)} character(s) {self.base.name} never saw, added to its vocabulary "
            f"({tok.vocab_size} -> {self.tokenizer.vocab_size}), their embedding and output rows starting as the "
            f"mean of the existing ones: {_show(new)}.")

    def load_into(self, model: torch.nn.Module) -> None:
        """Put the starting weights into the task's model (its vocabulary rows grown to fit)."""
        weights = grown_weights(self.weights, len(self.added))
        try:
            model.load_state_dict(weights)
        except (RuntimeError, KeyError, TypeError, ValueError):
            raise CharnnError(f"{self.base.path} is damaged or incomplete: its weights do not fit the model "
                              f"its own settings describe, so it cannot be fine-tuned.") from None

    def record(self) -> dict:
        """What the run's checkpoints say about where it started."""
        return {"name": self.base.name, "path": self.base.path, "kind": self.base.kind, "step": self.base_step,
                "added_chars": self.added}


def grown_weights(weights: dict, added: int) -> dict:
    """The weights with ``added`` new vocabulary rows, each the mean of the existing rows."""
    if not added:
        return weights
    out = dict(weights)
    for key in VOCAB_ROWS:
        if key in out:
            w = out[key].float()
            out[key] = torch.cat([w, w.mean(0, keepdim=True).expand(added, *w.shape[1:])])
    return out


def _model_config(saved: dict, settings: RunSettings) -> dict:
    """The saved config with what may change when fine-tuning: dropout, and a chat model's reply length."""
    cfg = {**saved, "dropout": settings.model.dropout}
    if settings.mode == "chat":
        cfg["max_reply_tokens"], cfg["max_context_tokens"] = settings.train.seq_len, 2 * settings.train.seq_len
    return cfg


def _chunks(settings: RunSettings) -> Iterator[str]:
    """The text the model will read, in pieces: a language model's corpus, a chat model's turns."""
    from charnn.text.corpus import check_readable, iter_text

    if settings.mode == "chat":
        from charnn.text.dialogue import read_dialogues

        for turns in read_dialogues(settings.corpus, settings.encoding, settings.errors):
            yield "\n".join(turns)
        return
    yield from iter_text(check_readable(settings.corpus), settings.encoding, settings.errors)


def _characters(settings: RunSettings) -> set[str]:
    seen: set[str] = set()
    for chunk in _chunks(settings):
        seen.update(chunk)
    return seen


def _sample(settings: RunSettings) -> str:
    """The start of the text, up to COVERAGE_SAMPLE_CHARS characters."""
    parts, n = [], 0
    for chunk in _chunks(settings):
        parts.append(chunk)
        n += len(chunk)
        if n >= COVERAGE_SAMPLE_CHARS:
            break
    return "".join(parts)[:COVERAGE_SAMPLE_CHARS]


def _show(chars) -> str:
    return " ".join(repr(c) for c in chars[:SHOWN_CHARS]) + (" …" if len(chars) > SHOWN_CHARS else "")


def _coverage(base: FineTuneBase, tokenizer, text: str) -> str:
    """How much of the text a subword tokenizer has no piece for (byte fallback spells it)."""
    counts = Counter(text)
    sp, unk = tokenizer.sp, tokenizer.sp.unk_id()
    outside = {c: n for c, n in counts.items() if sp.piece_to_id(c.replace(" ", SPM_PIECE_SPACE)) == unk}
    kept = f"{base.name} keeps its {tokenizer.kind} tokenizer ({tokenizer.vocab_size} pieces)"
    if not outside:
        return f"{kept}: every character of this text has a piece of its own."
    share = sum(outside.values()) / max(len(text), 1)
    chars = sorted(outside, key=lambda c: -outside[c])
    return (f"{kept}: {share:.2%} of this text's characters ({len(chars)} distinct: {_show(chars)}) have no "
            f"piece of their own and are spelled byte by byte.")
