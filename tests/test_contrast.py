"""The contrast of mismatched pairs (``charnn train --mode chat --contrast W``): the model's second reading
of each reply after another example's context, the loss on it, and which pairs the task lets count."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from charnn.training.chat_task import contrast_loss
from tests.test_seq2seq import tiny_model, write_synthetic


def test_cross_rows_are_each_reply_read_after_the_chosen_context():
    model = tiny_model()
    ctx = torch.tensor([[5, 6, 3, 0], [7, 3, 8, 3], [9, 3, 0, 0]])
    lengths = torch.tensor([3, 4, 2])
    rin = torch.tensor([[1, 5, 6], [1, 9, 0], [1, 7, 7]])
    cross = torch.tensor([2, 0, 1])
    with torch.no_grad():
        plain, _ = model(ctx, lengths, rin)
        both, _ = model(ctx, lengths, rin, cross=cross)
        mixed, _ = model(ctx[cross], lengths[cross], rin)
    assert both.shape == (6, 3, 24)
    assert torch.allclose(both[:3], plain, atol=1e-6)  # the real rows are untouched
    assert torch.allclose(both[3:], mixed, atol=1e-6)  # row 3 + i: reply i after context cross[i]
    assert not torch.allclose(both[3:], plain, atol=1e-4)


def _nll_rows(logits, targets):
    return F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=0, reduction="none").sum(1)


def test_contrast_loss_is_two_logistic_losses_per_counted_pair():
    torch.manual_seed(0)
    logits = torch.randn(6, 4, 9)
    targets = torch.tensor([[4, 5, 2, 0], [6, 2, 0, 0], [7, 8, 4, 2]])
    cross = torch.tensor([2, 0, 1])
    nll = _nll_rows(logits, torch.cat([targets, targets]))
    true, mixed = nll[:3], nll[3:]
    each = F.softplus(true - mixed) + F.softplus(true[cross] - mixed)
    counts = torch.tensor([True, False, True])
    assert torch.allclose(contrast_loss(logits, targets, 0, cross, counts), each[[0, 2]].mean())
    assert contrast_loss(logits, targets, 0, cross, torch.zeros(3, dtype=torch.bool)).item() == 0.0


def test_contrast_loss_falls_as_mismatched_pairs_grow_unlikely():
    targets = torch.tensor([[4, 2], [5, 2]])
    cross, counts = torch.tensor([1, 0]), torch.ones(2, dtype=torch.bool)
    sure = torch.full((2, 2, 6), -20.0)
    sure[0, 0, 4] = sure[0, 1, 2] = sure[1, 0, 5] = sure[1, 1, 2] = 20.0  # each true pair is certain
    unsure = torch.zeros(2, 2, 6)  # a mismatched pair is a uniform guess
    gap = 2 * math.log(6)  # a mismatched pair's two tokens cost ln 6 each, a true pair's nothing
    apart = contrast_loss(torch.cat([sure, unsure]), targets, 0, cross, counts).item()
    assert apart == pytest.approx(2 * math.log1p(math.exp(-gap)), rel=1e-4)
    same = torch.cat([unsure, unsure])
    assert contrast_loss(same, targets, 0, cross, counts).item() == pytest.approx(2 * math.log(2))


def test_the_task_pairs_neighbours_and_counts_only_whole_contexts_of_other_conversations(tmp_path):
    from charnn.config import RunSettings
    from charnn.training.chat_task import ChatTask

    s = RunSettings(mode="chat", corpus=str(write_synthetic(tmp_path / "d.txt", n=40)))
    s.model.layers, s.model.hidden, s.train.batch_size, s.train.seq_len = 1, 16, 8, 16
    s.chat.contrast, s.chat.context_dropout = 0.5, 0.0
    task = ChatTask(s, torch.device("cpu"))
    ex = task.train_examples
    index = np.array([0, 1, 5, 9, 13])  # turns 0 and 1 share a conversation; the rest are four apart
    perm, counts = (t.numpy() for t in task._cross(index, None))
    assert perm.tolist() == [4, 0, 1, 2, 3]
    assert counts.tolist() == [True, False, True, True, True]
    turns = ex.reply[index] - ex.first[index]
    keep = turns.copy()
    keep[3] = 0  # example 9's context cut by context dropout: no pair with it counts
    _, counts = (t.numpy() for t in task._cross(index, keep))
    assert counts.tolist() == [True, False, True, False, False]
    loss = task.train_loss(task.model, 0)
    s.chat.contrast = 0.0
    plain = ChatTask(s, torch.device("cpu"))
    plain.model.load_state_dict(task.model.state_dict())
    assert loss.item() > plain.train_loss(plain.model, 0).item()  # the contrast adds a positive term
