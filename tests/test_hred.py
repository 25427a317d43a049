"""The hierarchical (HRED) chat encoder, the conversation-start marker, the chat training levers and the
attention the TUI's heat strip shows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from charnn.errors import CharnnError
from charnn.models.hred import turn_grid
from charnn.models.seq2seq import Seq2SeqConfig, Seq2SeqModel, context_ids
from charnn.text.chat_batches import (
    CHAT_SPECIALS,
    BucketBatcher,
    DialogueExamples,
    generic_weights,
    special_ids,
)
from charnn.text.tokenizers import CharTokenizer
from tests.test_seq2seq import synthetic_conversations, tiny_model


def test_turn_grid_puts_each_token_in_its_turn_and_place():
    ctx = torch.tensor([[5, 6, 3, 7, 3], [8, 3, 0, 0, 0]])
    mask = torch.arange(5).unsqueeze(0) < torch.tensor([[5], [2]])
    turn, pos, lengths, n_turns = turn_grid(ctx, mask, sep_id=3)
    assert turn[0].tolist() == [0, 0, 0, 1, 1] and pos[0].tolist() == [0, 1, 2, 0, 1]
    assert lengths.tolist() == [[3, 2], [2, 0]] and n_turns.tolist() == [2, 1]


def test_hred_memory_has_the_flat_shapes_plus_a_context_state():
    model = tiny_model(encoder="hred")
    ctx, lengths = torch.tensor([[5, 6, 3, 7, 3], [8, 3, 0, 0, 0]]), torch.tensor([5, 2])
    with torch.no_grad():
        memory = model.encode(ctx, lengths)
        logits, state = model.decode(memory, torch.tensor([[1, 5, 6], [1, 9, 0]]))
    assert memory.values.shape == (2, 5, 16) and memory.keys.shape == (2, 5, 16) and memory.cond.shape == (2, 16)
    assert memory.init[0].shape == (2, 2, 16) and logits.shape == (2, 3, 24)
    beams = memory.select(torch.tensor([1, 1, 1]))
    assert beams.cond.shape == (3, 16) and torch.equal(beams.cond[2], memory.cond[1])


@pytest.mark.parametrize("encoder", ["flat", "hred"])
def test_hred_padding_never_changes_the_real_outputs(encoder):
    model = tiny_model(encoder=encoder)
    ctx = torch.tensor([[5, 6, 7, 3, 8, 3], [9, 3, 0, 0, 0, 0]])
    lengths = torch.tensor([6, 2])
    rin = torch.tensor([[1, 5, 6, 7], [1, 9, 0, 0]])
    with torch.no_grad():
        logits, _ = model(ctx, lengths, rin)
        noisy_ctx = ctx.clone()
        noisy_ctx[1, 2:] = torch.tensor([3, 11, 3, 3])  # separators in the padding must not add turns
        noisy, _ = model(noisy_ctx, lengths, rin)
        alone, _ = model(ctx[1:, :2], lengths[1:], rin[1:, :2])
        other, _ = model(torch.tensor([[10, 3, 9, 3]]), torch.tensor([4]), rin[1:, :2])
    assert torch.allclose(logits, noisy, atol=1e-6)
    assert torch.allclose(logits[1, :2], alone[0], atol=1e-6)
    assert not torch.allclose(other[0], alone[0], atol=1e-4)  # an earlier turn does reach the reply


def test_a_checkpoint_config_without_an_encoder_or_marker_loads_as_the_flat_model_it_was():
    from charnn.runtime.loading import build_model

    old = {k: v for k, v in tiny_model().config.to_dict().items() if k not in ("encoder", "start_id")}
    model = build_model("chat", old)
    assert model.config.encoder == "flat" and model.config.start_id == -1 and model.hred is None
    assert context_ids([[5]], model.config, start=True) == [5, 3]  # no marker in its vocabulary: none added
    with pytest.raises(CharnnError, match="--encoder"):
        Seq2SeqModel(Seq2SeqConfig(vocab_size=10, encoder="tree"))


def test_hred_weights_survive_a_save_and_load(tmp_path):
    from charnn.runtime.loading import build_model

    model = tiny_model(encoder="hred")
    torch.save(model.state_dict(), tmp_path / "m.pt")
    again = build_model("chat", model.config.to_dict())
    again.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    ctx, lengths, rin = torch.tensor([[5, 3, 6, 3]]), torch.tensor([4]), torch.tensor([[1, 7]])
    with torch.no_grad():
        assert torch.equal(model.eval()(ctx, lengths, rin)[0], again.eval()(ctx, lengths, rin)[0])
    assert again.config.encoder == "hred"


def marked_examples(convs, **kw):
    tok = CharTokenizer.fit(["".join(t for c in convs for t in c)], CHAT_SPECIALS)
    cfg = Seq2SeqConfig(vocab_size=tok.vocab_size, hidden=32, embedding=16, context_turns=2, **special_ids(tok), **kw)
    return tok, cfg, DialogueExamples(convs, tok, cfg)


def test_only_contexts_that_open_a_conversation_start_with_the_marker():
    tok, cfg, ex = marked_examples([["hi", "yo", "ok", "no"]])
    ctx, lengths, _, _ = ex.batch(np.arange(4))
    assert cfg.start_id == CHAT_SPECIALS.index("<start>")
    assert [int(c[0] == cfg.start_id) for c in ctx] == [1, 1, 1, 0]  # the last reads turns 2-3, mid-conversation
    assert ctx[0, 0] == cfg.start_id and lengths[0] == 1  # the opener itself: only the marker
    assert tok.decode(ctx[3, : lengths[3]].tolist()) == "yook"
    cut, cut_len, _, _ = ex.batch(np.array([2]), keep_turns=np.array([1]))  # context dropout: met in the middle
    assert cut[0, 0] != cfg.start_id and tok.decode(cut[0, : cut_len[0]].tolist()) == "yo"
    none, none_len, _, _ = ex.batch(np.array([2, 0]), keep_turns=np.array([0, 0]))  # cut to nothing
    assert none_len.tolist() == [1, 1] and none[0, 0] == cfg.sep_id  # the context-free reply the anti-LM reads
    assert none[1, 0] == cfg.start_id  # an opening keeps its marker
    # decoding a user's fresh chat uses no marker; a known true start can ask for it
    assert context_ids([[9]], cfg) == [9, cfg.sep_id]
    assert context_ids([[9]], cfg, start=True) == [cfg.start_id, 9, cfg.sep_id]


def test_context_dropout_keeps_none_to_all_but_one_turn_so_the_context_free_reply_is_trained(tmp_path):
    from charnn.config import RunSettings
    from charnn.training.chat_task import ChatTask
    from tests.test_seq2seq import write_synthetic

    s = RunSettings(mode="chat", corpus=str(write_synthetic(tmp_path / "d.txt", n=40)))
    s.model.layers, s.model.hidden, s.train.batch_size, s.train.seq_len = 1, 16, 8, 16
    s.chat.context_dropout = 1.0 - 1e-9  # cut every context that has a turn
    task = ChatTask(s, torch.device("cpu"))
    ex = task.train_examples
    index = np.arange(len(ex))
    turns = ex.reply - ex.first
    keeps = np.concatenate([task._keep_turns(index, step) for step in range(20)])
    turns = np.tile(turns, 20)
    assert (keeps[turns == 0] == 0).all()  # an opening has nothing to cut
    assert (keeps[turns >= 1] < turns[turns >= 1]).all()  # a cut always drops at least one turn
    for t in range(1, int(turns.max()) + 1):  # and keeps each of 0 .. t-1 turns
        assert set(keeps[turns == t].tolist()) == set(range(t))
    s.chat.context_dropout = 0.0
    assert ChatTask(s, torch.device("cpu"))._keep_turns(index, 0) is None


def test_generic_replies_are_weighted_down_and_the_rest_kept():
    convs = [["hi", f"topic {i}", "Hi!"] for i in range(25)]
    w = generic_weights(convs, 0.25)
    assert w.shape == (75,) and w[0] == 0.25 and w[2] == 0.25 and w[1] == 1.0


def test_weighted_loss_is_the_plain_mean_by_default_and_follows_the_weights():
    import torch.nn.functional as F

    from charnn.training.chat_task import weighted_loss

    logits = torch.randn(2, 3, 7)
    tgt = torch.tensor([[4, 5, 2], [6, 2, 0]])
    plain = F.cross_entropy(logits.reshape(-1, 7), tgt.reshape(-1), ignore_index=0)
    assert torch.allclose(weighted_loss(logits, tgt, 0), plain)
    only_first = F.cross_entropy(logits[0], tgt[0])
    assert torch.allclose(weighted_loss(logits, tgt, 0, torch.tensor([1.0, 0.0])), only_first)
    assert weighted_loss(logits, tgt, 0, label_smoothing=0.2) != weighted_loss(logits, tgt, 0)


def test_a_few_hred_training_steps_reduce_the_loss_and_beam_and_sampling_decode():
    from charnn.decoding.replies import generate_reply

    convs = synthetic_conversations(120)
    tok, cfg, ex = marked_examples(convs, encoder="hred")
    torch.manual_seed(0)
    model = Seq2SeqModel(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    batcher = BucketBatcher(ex, 16, seed=0)
    losses = []
    for step in range(30):
        ctx, lengths, rin, tgt = (torch.from_numpy(a) for a in ex.batch(batcher.global_batch(step)))
        _, loss = model(ctx, lengths, rin, tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.75 * np.mean(losses[:5])
    model.eval()
    turns = ["cats please", "ok", "what?"]
    beam = "".join(generate_reply(model, tok, turns, beam=3, max_length=12))
    gen = torch.Generator().manual_seed(0)
    sampled = "".join(generate_reply(model, tok, turns, max_length=12, generator=gen))
    assert isinstance(beam, str) and isinstance(sampled, str) and len(beam) <= 12


def test_attention_rows_sum_to_one_and_never_reach_padding():
    model = tiny_model(encoder="hred")
    ctx, lengths = torch.tensor([[5, 6, 3, 7, 3], [8, 3, 0, 0, 0]]), torch.tensor([5, 2])
    with torch.no_grad():
        _, _, attn = model.decode_with_attention(model.encode(ctx, lengths), torch.tensor([[1, 5], [1, 9]]))
    assert attn.shape == (2, 2, 5)
    assert torch.allclose(attn.sum(-1), torch.ones(2, 2), atol=1e-5)
    assert attn[1, :, 2:].abs().max() == 0


def test_the_heat_strip_groups_context_tokens_into_words_by_turn():
    from charnn.tui.widgets.attention_strip import group_words, heat_strip, reply_attention

    tok = CharTokenizer.fit(["hi there you"], CHAT_SPECIALS)
    ids = [*tok.encode("hi there"), 3, *tok.encode("you"), 3]
    words = group_words(ids, [0.1] * 8 + [0.0, 0.3, 0.2, 0.1, 0.0], tok, sep_id=3)
    assert [[w for w, _ in turn] for turn in words] == [["hi", "there"], ["you"]]
    assert words[1][0][1] == pytest.approx(0.6) and words[0][0][1] == pytest.approx(0.2)
    assert "there" in heat_strip(words, ["you: ", "model: "]).plain
    cfg = Seq2SeqConfig(vocab_size=tok.vocab_size, hidden=16, embedding=8, encoder="hred", **special_ids(tok))
    torch.manual_seed(0)
    shown = reply_attention(Seq2SeqModel(cfg).eval(), tok, ["hi there", "you"], "hi")
    assert [[w for w, _ in turn] for turn in shown] == [["hi", "there"], ["you"]]
    assert 0 < sum(w for turn in shown for _, w in turn) <= 1 + 1e-5  # separators and spaces hold the rest


def test_chat_levers_are_refused_for_a_language_model_and_kept_for_chat():
    from charnn.presets import build_settings, validate_settings

    with pytest.raises(CharnnError, match="--encoder applies to chat models only"):
        build_settings({"mode": "lm", "encoder": "hred"}, "x.txt")
    default = build_settings({"mode": "chat"}, "x.txt").chat
    assert (default.encoder, default.context_dropout, default.start_marker) == ("flat", 0.25, True)
    s = build_settings({"mode": "chat", "encoder": "hred", "context_dropout": 0.2, "label_smoothing": 0.1,
                        "no_start_marker": True}, "x.txt")
    assert (s.chat.encoder, s.chat.context_dropout, s.chat.label_smoothing, s.chat.start_marker) == ("hred", 0.2, 0.1,
                                                                                                      False)
    s.chat.generic_weight = 1.5
    with pytest.raises(CharnnError, match="--generic-weight"):
        validate_settings(s)
