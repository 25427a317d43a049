"""``charnn eval``: how well a model predicts a text, in bits per character."""

from __future__ import annotations

import math

from charnn.errors import CharnnError


def evaluate_file(spec: str, text_path: str, device: str = "auto", encoding: str = "utf-8",
                  errors: str = "strict", max_tokens: int = 0) -> dict:
    from charnn.runtime.checkpoint import load_checkpoint
    from charnn.runtime.runs import resolve_checkpoint

    path = resolve_checkpoint(spec, "lm")
    kind = load_checkpoint(path).get("kind")
    if kind == "chat":
        from charnn.chat import evaluate_chat_file

        return evaluate_chat_file(path, text_path, device=device, encoding=encoding, errors=errors,
                                  max_tokens=max_tokens)
    return evaluate_lm_file(path, text_path, device, encoding, errors, max_tokens)


def evaluate_lm_file(path, text_path: str, device: str = "auto", encoding: str = "utf-8",
                     errors: str = "strict", max_tokens: int = 0, window: int = 256) -> dict:
    """Score the whole text as one stream, the state carried across windows."""
    import numpy as np
    import torch

    from charnn.runtime.device import set_cpu_threads
    from charnn.runtime.loading import load_model
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
    lengths = tok.char_lengths()
    x_all = torch.from_numpy(np.asarray(ids, dtype=np.int64)).to(loaded.device)
    total, state = 0.0, None
    with torch.inference_mode():
        for i in range(0, len(ids) - 1, window):
            x = x_all[i : min(i + window, len(ids) - 1)].unsqueeze(0)
            y = x_all[i + 1 : i + 1 + x.size(1)]
            logits, _, state = loaded.model(x, state=state)
            total += float(torch.nn.functional.cross_entropy(logits[0].float(), y, reduction="sum"))
    n_tok = len(ids) - 1
    n_chars = float(lengths[np.asarray(ids[1:], dtype=np.int64)].sum())
    return {
        "checkpoint": str(loaded.path),
        "tokens": n_tok,
        "characters": int(n_chars),
        "loss_nats_per_token": total / n_tok,
        "bits_per_char": total / math.log(2) / max(n_chars, 1e-9),
    }
