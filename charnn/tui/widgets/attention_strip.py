"""The attention heat strip: how much the last reply looked at each word of the context it read.

The decks' "attention over time" figure, in a terminal: the reply is read again
with the model's context (teacher-forced, so a sampled reply's attention is exactly
what it had while it was written, and a beam reply's is its chosen path's), the
attention is averaged over the reply's tokens and summed over each word's tokens,
and each context word is shown on a background as hot as its share.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.color import Color
from rich.style import Style
from rich.text import Text

Words = list[list[tuple[str, float]]]  # per context turn (oldest first), its words and their attention
COLD, HOT = (30, 30, 46), (255, 140, 0)
START_WORD = "‹start›"


def reply_attention(model, tokenizer, turns: Sequence[str], reply: str, context_turns: int | None = None) -> Words:
    """Attention of ``reply`` over the context ``turns`` (oldest first, as the reply read them), by word."""
    import torch

    from charnn.models.seq2seq import context_ids
    from charnn.text.chat_batches import encode_turn

    cfg = model.config
    k = cfg.context_turns if context_turns is None else context_turns
    kept = list(turns)[-k:] if k > 0 else []
    ids = context_ids([encode_turn(tokenizer, t).tolist() for t in kept], cfg, max_turns=k)
    reply_ids = [cfg.bos_id, *encode_turn(tokenizer, reply).tolist()][: cfg.max_reply_tokens + 1]
    device = next(model.parameters()).device
    with torch.inference_mode():
        memory = model.encode(torch.tensor([ids], device=device), torch.tensor([len(ids)], device=device))
        _, _, attn = model.decode_with_attention(memory, torch.tensor([reply_ids], device=device))
    weights = attn[0].float().mean(0).tolist()
    return group_words(ids, weights, tokenizer, cfg.sep_id, cfg.start_id)


def group_words(ids: Sequence[int], weights: Sequence[float], tokenizer, sep_id: int, start_id: int = -1) -> Words:
    """Context tokens into turns of words (a word: the tokens between spaces), each word's weights summed."""
    turns: Words = [[]]
    joined = True  # whether the next piece continues the last word
    for token, w in zip(ids, weights, strict=True):
        if token == sep_id:
            turns.append([])
            joined = False
            continue
        piece = START_WORD + " " if token == start_id else tokenizer.decode([token])
        words = turns[-1]
        if piece.strip() and words and joined and not piece[0].isspace():
            words[-1] = (words[-1][0] + piece.strip(), words[-1][1] + w)
        elif piece.strip():
            words.append((piece.strip(), w))
        joined = bool(piece) and not piece[-1].isspace()
    return [t for t in turns if t]


def heat_strip(turns: Words, speakers: Sequence[str] = ()) -> Text:
    """The context as lines of words on backgrounds from cold (no attention) to hot (the most)."""
    top = max((w for turn in turns for _, w in turn), default=0.0) or 1.0
    out = Text()
    for i, turn in enumerate(turns):
        if i < len(speakers):
            out.append(speakers[i], style="dim")
        for word, w in turn:
            share = min(1.0, max(0.0, w / top))
            bg = Color.from_rgb(*(c + (h - c) * share for c, h in zip(COLD, HOT, strict=True)))
            out.append(word, style=Style(bgcolor=bg, color="black" if share > 0.5 else "white"))
            out.append(" ")
        out.append("\n")
    out.append("attention of the last reply: cold ", style="dim")
    for share in (0.0, 0.25, 0.5, 0.75, 1.0):
        out.append("  ", style=Style(bgcolor=Color.from_rgb(*(c + (h - c) * share for c, h in zip(COLD, HOT,
                                                                                                    strict=True)))))
    out.append(" hot", style="dim")
    return out
