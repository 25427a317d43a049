"""``charnn eval``: how well a model predicts a text, in bits per character (either kind of model)."""

from __future__ import annotations

from collections.abc import Sequence

from charnn.errors import CharnnError
from charnn.scoring import Score

EVAL_CHARS = 200_000  # reply characters a chat model is scored on by default (a couple of thousand replies)
N_SAMPLED = 100  # replies sampled for distinct-1/2
N_EXAMPLES = 5


def evaluate_file(spec: str, text_path: str, device: str = "auto", encoding: str = "utf-8",
                  errors: str = "strict", max_tokens: int = 0) -> dict:
    """The checkpoint ``spec`` (a path, run or name) scored on ``text_path``, by the kind of model it holds."""
    from charnn.runtime.checkpoint import load_checkpoint
    from charnn.runtime.runs import resolve_checkpoint

    path = resolve_checkpoint(spec, "lm")
    kind = load_checkpoint(path).get("kind")
    if kind == "chat":
        return evaluate_chat_file(path, text_path, device=device, encoding=encoding, errors=errors,
                                  max_tokens=max_tokens)
    return evaluate_lm_file(path, text_path, device, encoding, errors, max_tokens)


def evaluate_lm_file(path, text_path: str, device: str = "auto", encoding: str = "utf-8",
                     errors: str = "strict", max_tokens: int = 0, window: int = 256) -> dict:
    """Score the whole text as ``score_text`` reads it (up to 64 streams side by side, see
    ``scoring.streams.parallel_reading``), every token after the first scored once."""
    from charnn.runtime.device import set_cpu_threads
    from charnn.runtime.loading import load_model
    from charnn.scoring.streams import score_text
    from charnn.text.corpus import read_text

    set_cpu_threads()
    loaded = load_model(path, "lm", device)
    text = read_text(text_path, encoding, errors)
    tok = loaded.tokenizer
    ids = tok.encode_array(text)
    if max_tokens:
        ids = ids[: max_tokens + 1]
    if len(ids) < 2:
        raise CharnnError(f"{text_path} is too short to score; it needs at least two tokens.")
    score = score_text(loaded.model, ids, tok.char_lengths(), loaded.device, window)
    return {
        "checkpoint": str(loaded.path),
        "tokens": score.tokens,
        "characters": int(score.chars),
        "loss_nats_per_token": score.nats_per_token,
        "bits_per_char": score.bits_per_char,
    }


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct word n-grams over all n-grams of ``texts`` (Li et al. 2016)."""
    grams, total = set(), 0
    for text in texts:
        words = text.split()
        for i in range(len(words) - n + 1):
            grams.add(tuple(words[i : i + n]))
            total += 1
    return len(grams) / total if total else 0.0


def _held_out_conversations(loaded, text_path, encoding: str, errors: str) -> tuple[list, str]:
    """The conversations to score and what they are: only the held-out ones of the model's own corpus."""
    from charnn.text.corpus import check_readable, hash_file
    from charnn.text.dialogue import read_dialogues, split_conversations

    conversations = read_dialogues(text_path, encoding, errors)
    ck = loaded.checkpoint
    if hash_file(check_readable(text_path)).sha256 == ck.get("corpus", {}).get("corpus_sha256"):
        fraction = ck.get("settings", {}).get("train", {}).get("val_fraction", 0.1)
        held_out = split_conversations(conversations, fraction)[1]
        return held_out, f"the held-out {fraction:.0%} of the training conversations"
    return conversations, "the whole file"


def _sampled_replies(loaded, examples, seed: int) -> tuple[list[str], list[str]]:
    """Replies sampled to held-out contexts spread over the file, and a few of them shown as exchanges."""
    import numpy as np
    import torch

    from charnn.decoding.replies import format_exchange, generate_reply

    model, tok, dev = loaded.model, loaded.tokenizer, loaded.device
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    picks = np.linspace(0, len(examples) - 1, num=min(N_SAMPLED, len(examples))).astype(int)
    replies, exchanges = [], []
    for i in picks:
        turns = [tok.decode(t.tolist()) for t in examples.context_of(int(i))]
        reply = "".join(generate_reply(model, tok, turns, max_length=model.config.max_reply_tokens,
                                       temperature=0.8, generator=gen, device=dev)).strip()
        replies.append(reply)
        if turns and len(exchanges) < N_EXAMPLES:
            real = tok.decode(examples.reply_ids(int(i)).tolist())
            real = real if len(real) <= 100 else real[:100] + "…"
            exchanges.append(f"{format_exchange(turns, reply)}   (real reply: {real})")
    return replies, exchanges


def evaluate_chat_file(path, text_path, device: str = "auto", encoding: str = "utf-8", errors: str = "strict",
                       max_tokens: int = 0, seed: int = 0) -> dict:
    """Held-out reply bits/char with the model's context, with only the last turn, and with none;
    distinct-1/2 of sampled replies; a few example exchanges.

    When ``text_path`` is the file the model was trained on, only its held-out conversations are scored.
    """
    import dataclasses

    from charnn.runtime.device import set_cpu_threads
    from charnn.runtime.loading import load_model
    from charnn.scoring.replies import EVAL_REPLY_TOKENS, reply_losses, score_examples
    from charnn.text.chat_batches import DialogueExamples

    set_cpu_threads()
    loaded = load_model(path, "chat", device)
    model, tok, dev = loaded.model, loaded.tokenizer, loaded.device
    cfg = model.config
    conversations, scored = _held_out_conversations(loaded, text_path, encoding, errors)
    budget = max_tokens or EVAL_CHARS  # for chat models counted in reply characters
    with_ctx = DialogueExamples(conversations, tok, cfg, EVAL_REPLY_TOKENS)
    last_only = DialogueExamples(conversations, tok, dataclasses.replace(cfg, context_turns=1), EVAL_REPLY_TOKENS)
    subset, nats_ctx, tokens = reply_losses(model, with_ctx, dev, budget)
    _, nats_none, _ = reply_losses(model, with_ctx, dev, budget, drop_context=True)
    _, bpc_last = score_examples(model, last_only, dev, budget)
    chars = float(with_ctx.chars[subset].sum())
    with_context = Score(float(nats_ctx.sum()), int(tokens.sum()), chars)
    bpc, bpc_none = with_context.bits_per_char, Score(float(nats_none.sum()), 0, chars).bits_per_char
    replies, exchanges = _sampled_replies(loaded, with_ctx, seed)
    result = {
        "checkpoint": str(loaded.path),
        "scored": scored,
        "replies": len(subset),
        "context_turns": cfg.context_turns,
        "loss_nats_per_token": with_context.nats_per_token,
        "bits_per_char": bpc,
        "bits_per_char_last_turn_only": bpc_last,
        "bits_per_char_without_context": bpc_none,
        "context_gain_bits_per_char": bpc_none - bpc,
        # paired per reply: how many held-out replies the context makes more likely
        "replies_more_likely_with_context": float((nats_ctx < nats_none).mean()) if len(subset) else 0.0,
        "distinct_1": distinct_n(replies, 1),
        "distinct_2": distinct_n(replies, 2),
    }
    for j, text in enumerate(exchanges, start=1):
        result[f"example_{j}"] = text
    return result
