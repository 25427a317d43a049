"""A chat model's loss on held-out replies, each scored whole on its own (so any batch gives the same figure)."""

from __future__ import annotations

import numpy as np

from charnn.scoring import Score
from charnn.text.chat_batches import DialogueExamples

EVAL_BATCH = 64
EVAL_REPLY_TOKENS = 1024  # held-out replies are scored whole up to this length (training cuts them shorter)


def eval_subset(examples: DialogueExamples, max_chars: int) -> np.ndarray:
    """The first examples (in file order) whose replies hold ``max_chars`` characters (0: all).

    Counted in characters, not tokens, so char and subword models are scored on the same replies.
    """
    if not max_chars:
        return np.arange(len(examples))
    n = int(np.searchsorted(np.cumsum(examples.chars), max_chars, side="right"))
    return np.arange(max(1, min(n, len(examples))))


def reply_losses(model, examples: DialogueExamples, device, max_chars: int = 0, drop_context: bool = False,
                 bf16: bool = True, batch_size: int = EVAL_BATCH) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the first ``max_chars`` characters' worth of replies (0: all): their indices (file order), each
    reply's summed loss in nats and its token count; ``drop_context`` scores them with no context at all."""
    import torch
    import torch.nn.functional as F

    from charnn.runtime.device import bf16_autocast

    subset = eval_subset(examples, max_chars)
    order = np.argsort(examples.ctx_len[subset] + examples.rep_len[subset], kind="stable")  # little padding
    autocast = bf16_autocast(device, bf16)
    nats = np.zeros(len(subset))
    tokens = np.zeros(len(subset), dtype=np.int64)
    pad = examples.cfg.pad_id
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for i in range(0, len(subset), batch_size):
                rows = order[i : i + batch_size]
                ctx, lengths, rin, tgt = (torch.from_numpy(a).to(device)
                                          for a in examples.batch(subset[rows], drop_context))
                with autocast:
                    logits, _ = model(ctx, lengths, rin)
                loss = F.cross_entropy(logits.transpose(1, 2).float(), tgt, ignore_index=pad, reduction="none")
                nats[rows] = loss.sum(1).double().cpu().numpy()
                tokens[rows] = (tgt != pad).sum(1).cpu().numpy()
    finally:
        model.train(was_training)
    return subset, nats, tokens


def score_examples(model, examples: DialogueExamples, device, max_chars: int = 0, drop_context: bool = False,
                   bf16: bool = True, batch_size: int = EVAL_BATCH) -> tuple[float, float]:
    """(nats per token, bits per character) of the replies of ``examples`` (see ``reply_losses``)."""
    subset, nats, tokens = reply_losses(model, examples, device, max_chars, drop_context, bf16, batch_size)
    score = Score(float(nats.sum()), int(tokens.sum()), float(examples.chars[subset].sum()))
    return score.nats_per_token, score.bits_per_char
