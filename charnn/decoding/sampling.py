"""Drawing text from a language model: temperature, top-k, top-p, streamed piece by piece.

The recurrent state is carried from token to token, so each new token costs
one step of the network whatever the length so far. Text comes out as an
iterator of strings; a multi-byte character split across subword pieces is
held back until it is whole.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import TYPE_CHECKING

from charnn.config import SampleConfig
from charnn.errors import CharnnError

if TYPE_CHECKING:
    import torch

    from charnn.text.tokenizers import Tokenizer


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Mask (to -inf) all but the top-k logits and the smallest nucleus of mass top-p."""
    import torch

    if top_k and 0 < top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if 0.0 < top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cum = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        drop = cum - torch.softmax(sorted_logits, dim=-1) >= top_p  # keep the token that crosses p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


def next_token(
    logits: torch.Tensor,
    temperature: float,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Ids drawn from the last-dimension logits; temperature 0 is argmax."""
    import torch

    if temperature <= 0:
        return logits.argmax(dim=-1)
    logits = filter_logits(logits.float() / temperature, top_k, top_p)
    probs = torch.softmax(logits, dim=-1)
    flat = probs.reshape(-1, probs.size(-1))
    return torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1])


def validate_sampling(temperature: float, top_k: int, top_p: float) -> None:
    """Refuse a temperature, top-k or top-p no draw can use; ``charnn generate`` and chat share it."""
    if temperature < 0:
        raise CharnnError("--temp must be 0 or more (0 always picks the most likely token).")
    if top_k < 0:
        raise CharnnError("--top-k must be 0 (off) or a positive number.")
    if not 0.0 < top_p <= 1.0:
        raise CharnnError("--top-p must be in (0, 1].")


def validate_sample_config(cfg: SampleConfig) -> None:
    validate_sampling(cfg.temperature, cfg.top_k, cfg.top_p)
    if cfg.length < 0 or cfg.length > 10_000_000:
        raise CharnnError("--length must be between 0 and 10,000,000.")
    if cfg.num_samples < 1 or cfg.num_samples > 10_000:
        raise CharnnError("--num-samples must be between 1 and 10,000.")


def encode_prime(tokenizer: Tokenizer, prime: str) -> list[int]:
    unknown = tokenizer.unknown_chars(prime)
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:8])
        raise CharnnError(
            f"The prompt has character(s) this model never saw in training ({shown}); "
            f"remove them or train on text that has them."
        )
    return tokenizer.encode(prime)


def default_start(tokenizer: Tokenizer) -> list[int]:
    """What to feed when there is no prompt: a newline if the model knows one."""
    try:
        return tokenizer.encode("\n")
    except CharnnError:
        return [tokenizer.vocab_size - 1]


PREFILL_WINDOW = 4096  # prompt tokens per forward pass
SHORT_PROMPT = 32  # prompts up to this long go token by token (no per-call RNN set-up cost)


def generate_ids(
    model,
    start: list[int],
    length: int,
    temperature: float = 0.8,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    state=None,
) -> Iterator[int]:
    """Token ids after ``start`` (which must be non-empty), one per step.

    Uses the model's ``Stepper`` (charnn/models/stepper.py): a plain temperature draw is
    a Gumbel-max argmax fused into the output layer. Nothing here switches autograd
    modes across a ``yield`` (the stepper's weights are detached), so generators
    interleaved in one thread cannot disturb each other.
    """
    import torch

    x = torch.tensor([start], dtype=torch.long, device=device)
    if x.size(1) > SHORT_PROMPT:
        # a long prompt is read in windows by the full network, so memory stays bounded
        with torch.inference_mode():
            for i in range(0, x.size(1) - 1, PREFILL_WINDOW):
                _, _, state = model(x[:, i : min(i + PREFILL_WINDOW, x.size(1) - 1)], state=state)
        x = x[:, -1:]
    stepper = model.stepper(1, state)
    for i in range(x.size(1)):
        top = stepper.advance(x[:, i])
    plain = temperature > 0 and not (0 < top_k < stepper.vocab_size) and top_p >= 1.0
    for _ in range(length):
        if temperature <= 0:
            tok = stepper.logits(top).argmax(dim=-1)
        elif plain:
            tok = stepper.sample(top, temperature, generator)
        else:
            tok = next_token(stepper.logits(top), temperature, top_k, top_p, generator)
        yield int(tok)
        top = stepper.advance(tok)


def stream_text(ids: Iterator[int], tokenizer: Tokenizer) -> Iterator[str]:
    """Decode ids to text incrementally; partial UTF-8 sequences wait for their rest."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    table = tokenizer.token_bytes
    for i in ids:
        piece = decoder.decode(table[i])
        if piece:
            yield piece
    rest = decoder.decode(b"", final=True)
    if rest:
        yield rest


def generate_text(model, tokenizer: Tokenizer, cfg: SampleConfig, device="cpu", generator=None) -> Iterator[str]:
    """The prompt's continuation as streamed text pieces (the prompt itself is not repeated)."""
    import torch

    validate_sample_config(cfg)
    start = encode_prime(tokenizer, cfg.prime) if cfg.prime else default_start(tokenizer)
    if not start:
        start = default_start(tokenizer)
    if generator is None:
        generator = torch.Generator(device=device)
        if cfg.seed is not None:
            generator.manual_seed(cfg.seed)
        else:
            generator.seed()
    model.eval()
    ids = generate_ids(model, start, cfg.length, cfg.temperature, cfg.top_k, cfg.top_p, generator, device)
    yield from stream_text(ids, tokenizer)
