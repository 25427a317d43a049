"""``charnn eval``: how well a model predicts a text, in bits per character (either kind of model)."""

from __future__ import annotations

from charnn.errors import CharnnError
from charnn.scoring import Score

EVAL_CHARS = 200_000  # reply characters a chat model is scored on by default (a couple of thousand replies)
N_CONTEXTS = 300  # held-out contexts each decoding replies to (besides the openers)
N_RANKED = 500  # held-out replies ranked among 20 for hits@1
N_EXAMPLES = 10


def evaluate_file(spec: str, text_path: str, device: str = "auto", encoding: str = "utf-8",
                  errors: str = "strict", max_tokens: int = 0) -> dict:
    """The checkpoint ``spec`` (a path, run or name) scored on ``text_path``, by the kind of model it holds;
    ``text_path`` may name a built-in corpus (`charnn corpora`), read in the form that kind of model reads."""
    from charnn.runtime.checkpoint import load_checkpoint
    from charnn.runtime.runs import resolve_checkpoint

    path = resolve_checkpoint(spec, "lm")
    kind = load_checkpoint(path).get("kind")
    text_path = _corpus_file(text_path, kind)
    if kind == "chat":
        return evaluate_chat_file(path, text_path, device=device, encoding=encoding, errors=errors,
                                  max_tokens=max_tokens)
    return evaluate_lm_file(path, text_path, device, encoding, errors, max_tokens)


def _corpus_file(text: str, kind: str | None) -> str:
    """A file to score as given, or a built-in corpus's file: the dialogue for a chat model, plain text else."""
    import os

    if os.path.exists(os.path.expanduser(text)):
        return text
    from charnn.corpora.catalog import is_builtin, resolve_corpus

    if not is_builtin(text):
        return text  # the scorer says the file is missing, in one sentence
    return str(resolve_corpus(text, mode="chat" if kind == "chat" else "lm"))


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


def _held_out_conversations(loaded, text_path, encoding: str, errors: str) -> tuple[list, str, list]:
    """The conversations to score and what they are (only the held-out ones of the model's own corpus),
    and all of the file's."""
    from charnn.text.corpus import check_readable, hash_file
    from charnn.text.dialogue import read_dialogues, split_conversations

    conversations = read_dialogues(text_path, encoding, errors)
    ck = loaded.checkpoint
    if hash_file(check_readable(text_path)).sha256 == ck.get("corpus", {}).get("corpus_sha256"):
        fraction = ck.get("settings", {}).get("train", {}).get("val_fraction", 0.1)
        held_out = split_conversations(conversations, fraction)[1]
        return held_out, f"the held-out {fraction:.0%} of the training conversations", conversations
    return conversations, "the whole file", conversations


def _exchange_picks(examples, n: int) -> list[int]:
    """``n`` held-out examples with at least one context turn, spread evenly over the file."""
    import numpy as np

    from charnn.scoring.chat_quality import with_context

    pool = with_context(examples)
    return [int(pool[j]) for j in np.linspace(0, len(pool) - 1, num=min(n, len(pool))).astype(int)] if len(pool) else []


def decoded_replies(loaded, examples, decodings: dict, n_contexts: int = N_CONTEXTS, seed: int = 0) -> dict:
    """Each decoding's replies to ``n_contexts`` held-out contexts and to the openers (fresh conversations):
    {"contexts": [...], "openers": [...], "turns": the contexts' turns, "real": the real replies}."""
    import torch

    from charnn.decoding.replies import reply_candidates
    from charnn.scoring.chat_quality import context_free_logp
    from charnn.scoring.openers import OPENERS

    model, tok, dev = loaded.model, loaded.tokenizer, loaded.device
    picks = _exchange_picks(examples, n_contexts)
    turns = [[tok.decode(t.tolist()) for t in examples.context_of(i)] for i in picks]
    out = {"turns": turns, "real": [tok.decode(examples.reply_ids(i).tolist()) for i in picks]}
    for name, decoding in decodings.items():
        gen = torch.Generator(device=dev)
        gen.manual_seed(seed)

        def reply(ts, decoding=decoding, gen=gen):
            found = reply_candidates(model, tok, ts, decoding, generator=gen, device=dev)
            best = found[0] if found else None
            if not best or not best.ids:
                return "", 0.0, 0.0
            alone = context_free_logp(model, best.ids, best.ended, dev)
            return best.text, best.logp / (len(best.ids) + best.ended), best.logp - alone

        out[name] = {where: [reply(ts) for ts in asked] for where, asked in
                     (("contexts", turns), ("openers", [[o] for o in OPENERS]))}
    return out


def _exchanges(decoded: dict, names: list[str], n: int = N_EXAMPLES) -> list[str]:
    """``n`` exchanges, held-out contexts and openers in turn: the context, each decoding's reply, the real one."""
    from charnn.decoding.replies import format_exchange
    from charnn.scoring.openers import OPENERS

    lines = []
    for j in range(n):
        i = j // 2
        from_file = j % 2 == 0 and i < len(decoded["turns"])
        turns = decoded["turns"][i] if from_file else [OPENERS[i % len(OPENERS)]]
        where = "contexts" if from_file else "openers"
        lines.append(format_exchange(turns, "", width=100).removesuffix(" -> "))
        lines.extend(f"    {name}: {decoded[name][where][i % len(decoded[name][where])][0]}" for name in names)
        if from_file:
            real = decoded["real"][i]
            lines.append(f"    (real reply: {real if len(real) <= 100 else real[:100] + '…'})")
    return lines


def chat_quality(loaded, examples, decodings: dict, seed: int = 0, n_contexts: int = N_CONTEXTS,
                 n_ranked: int = N_RANKED, known: set[str] | None = None) -> dict:
    """hits@1 of 20 (plain, PMI, and at each decoding's anti-LM weight) and, per decoding, the figures of its
    replies to held-out contexts and to the openers (with the share using a word not among ``known``),
    with example exchanges."""
    from charnn.scoring.chat_quality import rank_replies, reply_stats

    ranking = rank_replies(loaded.model, examples, loaded.device, n=n_ranked, seed=seed)
    decoded = decoded_replies(loaded, examples, decodings, n_contexts, seed)
    table = {name: {"decoding": d.describe(), "hits_at_1_at_mmi": ranking.hits_at_1(d.mmi),
                    **{where: reply_stats(*zip(*decoded[name][where], strict=True), known=known) for where in ("contexts", "openers")}}
             for name, d in decodings.items()}
    return {"ranked": len(ranking.given), "hits_at_1": ranking.hits_at_1(0.0), "hits_at_1_pmi": ranking.hits_at_1(1.0),
            "hits_at_1_per_token": ranking.hits_at_1(0.0, per_token=True),
            "hits_at_1_by_mmi": {f"{m:g}": ranking.hits_at_1(m) for m in (0.25, 0.5, 0.75, 1.0, 1.25)},
            "decodings": table, "examples": _exchanges(decoded, list(decodings))}


def evaluate_chat_file(path, text_path, device: str = "auto", encoding: str = "utf-8", errors: str = "strict",
                       max_tokens: int = 0, seed: int = 0, decodings: dict | None = None,
                       n_contexts: int = N_CONTEXTS, n_ranked: int = N_RANKED) -> dict:
    """Held-out reply bits/char with the model's context, with only the last turn, and with none;
    hits@1 of 20; for each decoding, the figures of its replies and a few example exchanges.

    When ``text_path`` is the file the model was trained on, only its held-out conversations are scored.
    """
    import dataclasses

    from charnn.decoding.replies import standard_decodings
    from charnn.runtime.device import set_cpu_threads
    from charnn.runtime.loading import load_model
    from charnn.scoring.chat_quality import known_words
    from charnn.scoring.replies import EVAL_REPLY_TOKENS, reply_losses, score_examples
    from charnn.text.chat_batches import DialogueExamples

    set_cpu_threads()
    loaded = load_model(path, "chat", device)
    model, tok, dev = loaded.model, loaded.tokenizer, loaded.device
    cfg = model.config
    conversations, scored, every = _held_out_conversations(loaded, text_path, encoding, errors)
    budget = max_tokens or EVAL_CHARS  # for chat models counted in reply characters
    with_ctx = DialogueExamples(conversations, tok, cfg, EVAL_REPLY_TOKENS)
    last_only = DialogueExamples(conversations, tok, dataclasses.replace(cfg, context_turns=1), EVAL_REPLY_TOKENS)
    subset, nats_ctx, tokens = reply_losses(model, with_ctx, dev, budget)
    _, nats_none, _ = reply_losses(model, with_ctx, dev, budget, drop_context=True)
    _, bpc_last = score_examples(model, last_only, dev, budget)
    chars = float(with_ctx.chars[subset].sum())
    with_context = Score(float(nats_ctx.sum()), int(tokens.sum()), chars)
    bpc, bpc_none = with_context.bits_per_char, Score(float(nats_none.sum()), 0, chars).bits_per_char
    decodings = decodings or standard_decodings(cfg.max_reply_tokens)
    quality = chat_quality(loaded, with_ctx, decodings, seed, n_contexts, n_ranked, known_words(every))
    default = quality["decodings"][next(iter(decodings))]["contexts"]
    return {
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
        "distinct_1": default["distinct_1"],
        "distinct_2": default["distinct_2"],
        **quality,
    }


STAT_COLUMNS = (("short_share", "≤2 words"), ("top_share", "commonest"), ("distinct_1", "distinct-1"),
                ("distinct_2", "distinct-2"), ("mean_words", "words/reply"), ("nats_per_token", "nats/token"),
                ("pmi", "PMI nats"), ("new_word_share", "new words"))


def format_chat_eval(result: dict) -> list[str]:
    """``charnn eval``'s lines for a chat model: the scores, one table row per decoding and where, examples."""
    plain = [f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in result.items()
             if not isinstance(v, dict | list)]
    labels = {name: f"{name} ({entry['decoding']})" for name, entry in result.get("decodings", {}).items()}
    width = max([8, *map(len, labels.values())])
    rows = [f"{'decoding':<{width}} {'replies to':<10} {'hits@1':>6} " + " ".join(f"{t:>11}" for _, t in STAT_COLUMNS)]
    for name, entry in result.get("decodings", {}).items():
        for where in ("contexts", "openers"):
            stats = entry[where]
            label = labels[name] if where == "contexts" else ""
            hits = f"{entry['hits_at_1_at_mmi']:.3f}" if where == "contexts" else ""
            rows.append(f"{label:<{width}} {where:<10} {hits:>6} " + " ".join(f"{stats[k]:>11.3f}" for k, _ in STAT_COLUMNS))
    by_mmi = result.get("hits_at_1_by_mmi", {})
    curve = ["hits@1 of 20 by the weight of the loss without context taken off (1: PMI): "
             + " · ".join(f"{m} {v:.3f}" for m, v in by_mmi.items())] if by_mmi else []
    return [*plain, *curve, "", "hits@1 of 20 at the decoding's anti-LM weight (0: plain, 1: PMI)", *rows, "",
            "example exchanges:", *result.get("examples", [])]
