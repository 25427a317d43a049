"""Chat batches (the LM batches' twin): context with separators, replies with end tokens, length buckets."""

from __future__ import annotations

import numpy as np

from charnn.text.chat_batches import BucketBatcher, padding_waste
from tests.test_seq2seq import chat_examples, synthetic_conversations


def test_batches_hold_context_with_separators_and_replies_with_end_tokens():
    tok, cfg, ex = chat_examples([["hi", "hello there", "bye"]], max_reply=5)
    ctx, lengths, rin, tgt = ex.batch(np.array([0, 1, 2]))
    assert lengths.tolist() == [1, 3, 15]
    assert tok.decode(ctx[2].tolist()) == "hihello there" and ctx[2, 2] == cfg.sep_id and ctx[2, 14] == cfg.sep_id
    assert ctx[0, 0] == cfg.sep_id  # no context: one separator
    assert rin[:, 0].tolist() == [cfg.bos_id] * 3
    assert tgt[0, :3].tolist() == [*tok.encode("hi"), cfg.eos_id]
    # a reply longer than the limit is cut, and its last target is its next character, not <eos>
    assert tok.decode(rin[1, 1:].tolist()) == "hello" and tok.decode(tgt[1].tolist()) == "hello "
    assert ex.chars[1] == 6 and ex.chars[0] == 2 and ex.eos_cut == 1


def test_bucketed_batches_cover_every_example_once_per_epoch_and_repeat_by_step():
    _, _, ex = chat_examples(synthetic_conversations(60) + [["x" * n, "y" * (n // 2)] for n in range(1, 80)])
    batcher = BucketBatcher(ex, 8, seed=3)
    epoch0 = [batcher.global_batch(s) for s in range(batcher.windows)]
    assert sorted(np.concatenate(epoch0).tolist()) == list(range(len(ex)))
    again = BucketBatcher(ex, 8, seed=3)  # a resumed run sees the same batch at the same step
    assert np.array_equal(again.global_batch(batcher.windows + 2), batcher.global_batch(batcher.windows + 2))
    assert not all(np.array_equal(a, b) for a, b in zip(epoch0, [batcher.global_batch(batcher.windows + s)
                                                                 for s in range(batcher.windows)], strict=True))
    ranks = [BucketBatcher(ex, 8, seed=3, rank=r, world=2).local_batch(5) for r in range(2)]
    assert sorted(np.concatenate(ranks).tolist()) == sorted(batcher.global_batch(5).tolist())
    bucketed = padding_waste(ex, batcher.plan(0))["total"]
    shuffled = padding_waste(ex, batcher.plan(0, bucketed=False))["total"]
    assert bucketed < shuffled / 2
