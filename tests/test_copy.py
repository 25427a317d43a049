"""The copy gate of a chat model (``--copy``; See et al. 2017's pointer-generator): reply tokens drawn from the
vocabulary or copied from the context by the attention, in one distribution."""

from __future__ import annotations

import pytest
import torch

from charnn.errors import CharnnError
from charnn.models.seq2seq import Seq2SeqModel, mix_copy
from tests.test_seq2seq import tiny_model

CTX = torch.tensor([[5, 6, 3, 7, 3], [8, 3, 0, 0, 0]])  # 3 is <sep>, 0 padding
LENGTHS = torch.tensor([5, 2])
RIN = torch.tensor([[1, 5, 6], [1, 9, 0]])


def test_the_mixture_is_a_distribution_and_attention_on_separators_goes_back_to_the_generator():
    torch.manual_seed(0)
    logits = torch.randn(1, 2, 10)
    attn = torch.tensor([[[0.5, 0.2, 0.3], [0.0, 0.0, 1.0]]])
    copy_ids = torch.tensor([[4, 4, -1]])  # the third position is a separator
    gen = torch.tensor([[[0.25], [0.6]]])
    logp = mix_copy(logits, attn, gen, copy_ids)
    p, plain = logp.exp(), torch.softmax(logits, -1)
    assert torch.allclose(p.sum(-1), torch.ones(1, 2))
    # row 0: 0.7 of the copy share lands on token 4, the 0.3 on the separator goes to the generator
    assert torch.allclose(p[0, 0, 4], 0.25 * plain[0, 0, 4] + 0.75 * 0.3 * plain[0, 0, 4] + 0.75 * 0.7)
    assert torch.allclose(p[0, 0, 2], (0.25 + 0.75 * 0.3) * plain[0, 0, 2])
    assert torch.allclose(logp[0, 1], torch.log_softmax(logits[0, 1], -1), atol=1e-6)  # all on the separator


def test_a_gate_that_always_generates_is_the_model_without_one_and_one_that_always_copies_reads_attention():
    plain, copying = tiny_model(), tiny_model(copy=True)
    missing, unexpected = copying.load_state_dict(plain.state_dict(), strict=False)
    assert set(missing) == {"copy_gate.weight", "copy_gate.bias"} and not unexpected
    with torch.no_grad():
        base, _ = plain(CTX, LENGTHS, RIN)
        copying.copy_gate.bias.fill_(50.0)
        same, _ = copying(CTX, LENGTHS, RIN)
        copying.copy_gate.bias.fill_(-50.0)
        memory = copying.encode(CTX, LENGTHS)
        logp, _, attn = copying.decode_with_attention(memory, RIN)
    assert torch.allclose(torch.log_softmax(base, -1), same, atol=1e-5)
    p, q = logp.exp(), same.exp()  # q: the generator's own distribution (the attention is the same)
    back = attn[0, :, 2] + attn[0, :, 4]  # attention on the separators returns to the generator
    assert torch.allclose(p[0, :, 5], attn[0, :, 0] + back * q[0, :, 5], atol=1e-5)
    assert torch.allclose(p[0, :, 7], attn[0, :, 3] + back * q[0, :, 7], atol=1e-5)
    assert torch.allclose(p[0, :, 9], back * q[0, :, 9], atol=1e-5)  # not in the context: only generated
    assert torch.allclose(p[1, :, 8], attn[1, :, 0] + attn[1, :, 1] * q[1, :, 8], atol=1e-5)


def test_padding_never_changes_a_copying_models_real_outputs():
    model = tiny_model(copy=True)
    with torch.no_grad():
        model.copy_gate.bias.fill_(0.0)  # copy half the time: the copy path counts
        logits, _ = model(CTX, LENGTHS, RIN)
        noisy_ctx = CTX.clone()
        noisy_ctx[1, 2:] = torch.tensor([11, 12, 13])
        noisy, _ = model(noisy_ctx, LENGTHS, RIN)
        alone, _ = model(CTX[1:, :2], LENGTHS[1:], RIN[1:, :2])
    assert torch.allclose(logits, noisy, atol=1e-5)
    assert torch.allclose(logits[1, :2], alone[0], atol=1e-5)


def test_a_new_copy_gate_starts_close_to_generating_and_learns_to_copy():
    from tests.test_hred import marked_examples
    from tests.test_seq2seq import synthetic_conversations

    convs = synthetic_conversations(120)
    _, cfg, ex = marked_examples(convs, copy=True)
    torch.manual_seed(0)
    model = Seq2SeqModel(cfg)
    assert torch.sigmoid(model.copy_gate.bias).item() == pytest.approx(0.95, abs=0.01)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    from charnn.text.chat_batches import BucketBatcher

    batcher = BucketBatcher(ex, 16, seed=0)
    losses = []
    for step in range(30):
        ctx, lengths, rin, tgt = (torch.from_numpy(a) for a in ex.batch(batcher.global_batch(step)))
        _, loss = model(ctx, lengths, rin, tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) < 0.75 * sum(losses[:5])
    assert model.copy_gate.weight.grad is not None and model.copy_gate.weight.grad.abs().sum() > 0


def test_fine_tuning_may_add_a_copy_gate_but_other_missing_weights_are_refused(tmp_path):
    from charnn.presets import FineTuneBase
    from charnn.training.init_from import StartingModel

    plain = tiny_model()
    base = FineTuneBase(name="base", path=str(tmp_path / "base.pt"), kind="chat", model_config={}, tokenizer="bpe",
                        vocab_size=24)
    start = StartingModel(base, 10, plain.state_dict(), tokenizer=None, model_config={})
    start.load_into(tiny_model(copy=True))
    assert any("copy gate" in n for n in start.notices)
    broken = {k: v for k, v in plain.state_dict().items() if not k.startswith("head.")}
    with pytest.raises(CharnnError, match="cannot be fine-tuned"):
        StartingModel(base, 10, broken, tokenizer=None, model_config={}).load_into(tiny_model(copy=True))
