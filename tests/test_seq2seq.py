"""The seq2seq chat model: masks, padding, learning a context-dependent reply (its batches: test_chat_batches)."""

from __future__ import annotations

import random

import pytest
import torch

from charnn.models.seq2seq import Seq2SeqConfig, Seq2SeqModel, context_ids, reversed_index
from charnn.scoring.replies import score_examples
from charnn.text.chat_batches import SPECIALS, BucketBatcher, DialogueExamples, special_ids
from charnn.text.tokenizers import CharTokenizer

THINGS = ["apples", "boats", "cats", "dogs", "eggs", "figs", "goats", "hats"]


def synthetic_conversations(n: int, seed: int = 0) -> list[list[str]]:
    """The last reply names what the first turn asked for, three turns earlier: only context can tell."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        thing = rng.choice(THINGS)
        out.append([f"{thing} please", "ok", "what?", thing])
    return out


def write_synthetic(path, n: int = 200, seed: int = 0):
    from charnn.text.dialogue import format_plain

    path.write_text(format_plain(synthetic_conversations(n, seed), ("A", "B")), encoding="utf-8")
    return path


def tiny_model(vocab: int = 24, **kw) -> Seq2SeqModel:
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(vocab_size=vocab, hidden=16, layers=2, encoder_layers=2, embedding=8, **kw)
    return Seq2SeqModel(cfg).eval()


def test_config_round_trips_through_a_plain_dict():
    cfg = Seq2SeqConfig(vocab_size=50, hidden=32, context_turns=5, sep_id=7)
    assert Seq2SeqConfig.from_dict({**cfg.to_dict(), "unknown": 1}) == cfg


def test_context_is_the_last_turns_each_ended_by_a_separator():
    cfg = Seq2SeqConfig(vocab_size=10, sep_id=3, context_turns=2, max_context_tokens=5)
    assert context_ids([[5, 6], [7], [8, 9]], cfg) == [7, 3, 8, 9, 3]
    assert context_ids([[5, 6, 7, 8], [9, 9]], cfg) == [8, 3, 9, 9, 3]  # cut from the left
    assert context_ids([], cfg) == [3]
    assert context_ids([[5]], cfg, max_turns=0) == [3]


def test_reversed_index_reverses_only_the_real_tokens():
    idx = reversed_index(torch.tensor([3, 1]), 4)
    assert idx.tolist() == [[2, 1, 0, 3], [0, 1, 2, 3]]
    assert torch.equal(idx.gather(1, idx), torch.arange(4).expand(2, 4))


def test_padded_positions_never_change_the_outputs():
    model = tiny_model()
    ctx = torch.tensor([[5, 6, 7, 3, 8, 3], [9, 3, 0, 0, 0, 0]])
    lengths = torch.tensor([6, 2])
    rin = torch.tensor([[1, 5, 6, 7], [1, 9, 0, 0]])
    with torch.no_grad():
        logits, _ = model(ctx, lengths, rin)
        noisy_ctx, noisy_rin = ctx.clone(), rin.clone()
        noisy_ctx[1, 2:] = torch.tensor([3, 11, 12, 3])  # separators too: they must not count as turns
        noisy_rin[1, 2:] = torch.tensor([13, 14])
        noisy, _ = model(noisy_ctx, lengths, noisy_rin)
        alone, _ = model(ctx[1:, :2], lengths[1:], rin[1:, :2])
    assert torch.allclose(logits[0], noisy[0], atol=1e-6)
    assert torch.allclose(logits[1, :2], noisy[1, :2], atol=1e-6)
    assert torch.allclose(logits[1, :2], alone[0], atol=1e-6)  # same as the example on its own, unpadded
    # and the context does matter
    with torch.no_grad():
        other, _ = model(torch.tensor([[10, 3]]), torch.tensor([2]), rin[1:, :2])
    assert not torch.allclose(other[0], alone[0], atol=1e-4)


def test_loss_ignores_padded_targets():
    model = tiny_model()
    ctx, lengths = torch.tensor([[5, 3]]), torch.tensor([2])
    rin, tgt = torch.tensor([[1, 5, 6]]), torch.tensor([[5, 6, 2]])
    with torch.no_grad():
        _, loss = model(ctx, lengths, rin, tgt)
        _, padded = model(ctx, lengths, torch.tensor([[1, 5, 6, 0, 0]]), torch.tensor([[5, 6, 2, 0, 0]]))
    assert torch.allclose(loss, padded, atol=1e-6)


def test_tied_weights_need_matching_sizes():
    from charnn.errors import CharnnError

    with pytest.raises(CharnnError, match="tie-weights"):
        Seq2SeqModel(Seq2SeqConfig(vocab_size=10, hidden=16, embedding=8, tie_weights=True))
    tied = Seq2SeqModel(Seq2SeqConfig(vocab_size=10, hidden=16, tie_weights=True))
    assert tied.head.weight is tied.embed.weight


def chat_examples(convs, context_turns=3, max_reply=160):
    tok = CharTokenizer.fit(["".join(t for c in convs for t in c)], SPECIALS)
    cfg = Seq2SeqConfig(vocab_size=tok.vocab_size, hidden=32, embedding=16, context_turns=context_turns,
                        max_reply_tokens=max_reply, **special_ids(tok))
    return tok, cfg, DialogueExamples(convs, tok, cfg)


def test_loss_falls_and_context_helps_on_a_dialogue_where_the_reply_depends_on_it():
    convs = synthetic_conversations(240)
    tok, cfg, ex = chat_examples(convs)
    _, _, val = chat_examples(synthetic_conversations(40, seed=1))
    torch.manual_seed(0)
    model = Seq2SeqModel(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    batcher = BucketBatcher(ex, 16, seed=0)
    dev = torch.device("cpu")
    before, _ = score_examples(model, val, dev)
    for step in range(100):
        ctx, lengths, rin, tgt = (torch.from_numpy(a) for a in ex.batch(batcher.global_batch(step)))
        _, loss = model(ctx, lengths, rin, tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after, bpc = score_examples(model, val, dev)
    _, bpc_without = score_examples(model, val, dev, drop_context=True)
    assert after < before * 0.4
    # the answer to "what?" is three turns back: without the context it is a guess among 8
    assert bpc_without > bpc + 0.1
