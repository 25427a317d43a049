import math

import pytest
import torch

from charnn.config import ModelConfig, SampleConfig
from charnn.decoding.sampling import filter_logits, generate_text, next_token
from charnn.errors import CharnnError
from charnn.models.lm import RNNLanguageModel
from charnn.text.tokenizers import CharTokenizer


def test_temperature_zero_is_argmax():
    logits = torch.tensor([[0.1, 2.0, -1.0, 1.9]])
    for _ in range(5):
        assert next_token(logits, 0.0).item() == 1


def test_low_temperature_concentrates_on_the_argmax():
    logits = torch.tensor([[0.0, 1.0, 0.5]])
    g = torch.Generator().manual_seed(0)
    draws = [next_token(logits, 0.05, generator=g).item() for _ in range(200)]
    assert draws.count(1) == 200
    draws_hot = [next_token(logits, 5.0, generator=g).item() for _ in range(300)]
    assert len(set(draws_hot)) == 3  # a high temperature spreads the mass


def test_top_k_keeps_exactly_k_tokens():
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0]])
    out = filter_logits(logits, top_k=2)
    kept = torch.isfinite(out)[0].nonzero().flatten().tolist()
    assert kept == [1, 3]


def test_top_p_keeps_smallest_nucleus():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    out = filter_logits(probs.log(), top_p=0.75)
    assert torch.isfinite(out)[0].tolist() == [True, True, False, False]
    out = filter_logits(probs.log(), top_p=0.5)  # the top token alone already reaches 0.5
    assert torch.isfinite(out)[0].tolist() == [True, False, False, False]
    g = torch.Generator().manual_seed(0)
    draws = {next_token(probs.log(), 1.0, top_p=0.75, generator=g).item() for _ in range(200)}
    assert draws == {0, 1}


def _model_and_tokenizer():
    tok = CharTokenizer.fit(["hello world\n"])
    torch.manual_seed(0)
    model = RNNLanguageModel(ModelConfig(vocab_size=tok.vocab_size, layers=1, hidden=16))
    return model, tok


def test_same_seed_same_text_different_seed_different_text():
    model, tok = _model_and_tokenizer()
    a = "".join(generate_text(model, tok, SampleConfig(temperature=1.0, length=60, seed=3)))
    b = "".join(generate_text(model, tok, SampleConfig(temperature=1.0, length=60, seed=3)))
    c = "".join(generate_text(model, tok, SampleConfig(temperature=1.0, length=60, seed=4)))
    assert a == b and a != c and len(a) == 60


def test_generation_carries_state_one_token_at_a_time():
    """Feeding tokens one by one with the carried state equals one pass over the sequence."""
    model, tok = _model_and_tokenizer()
    model.eval()
    ids = torch.tensor([tok.encode("hello wor")])
    full, _, _ = model(ids)
    state, steps = None, []
    for i in range(ids.size(1)):
        logits, _, state = model(ids[:, i : i + 1], state=state)
        steps.append(logits)
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


def test_unknown_prompt_characters_are_a_clear_error():
    model, tok = _model_and_tokenizer()
    with pytest.raises(CharnnError, match="never saw"):
        list(generate_text(model, tok, SampleConfig(prime="xyz", length=5, seed=0)))


@pytest.mark.parametrize("bad", [dict(temperature=-1), dict(top_p=0.0), dict(top_k=-2), dict(length=-5)])
def test_bad_sampling_settings_are_refused(bad):
    model, tok = _model_and_tokenizer()
    with pytest.raises(CharnnError):
        list(generate_text(model, tok, SampleConfig(seed=0, **bad)))


@pytest.mark.parametrize("bad, flag", [((-1.0, 0, 1.0), "--temp"), ((0.8, -2, 1.0), "--top-k"),
                                       ((0.8, 0, 0.0), "--top-p"), ((0.8, 0, 1.5), "--top-p")])
def test_generate_and_chat_refuse_a_bad_draw_setting_with_the_same_sentence(bad, flag):
    from charnn.decoding.replies import validate_chat_options
    from charnn.decoding.sampling import validate_sample_config

    temperature, top_k, top_p = bad
    with pytest.raises(CharnnError) as lm:
        validate_sample_config(SampleConfig(temperature=temperature, top_k=top_k, top_p=top_p))
    with pytest.raises(CharnnError) as chat:
        validate_chat_options(temperature, top_k, top_p, beam=0, max_length=10, context_turns=None)
    assert str(lm.value) == str(chat.value) and str(lm.value).startswith(flag)


def test_sampling_distribution_matches_softmax():
    logits = torch.tensor([[math.log(0.7), math.log(0.2), math.log(0.1)]])
    g = torch.Generator().manual_seed(1)
    draws = torch.stack([next_token(logits, 1.0, generator=g) for _ in range(4000)]).flatten()
    freq = torch.bincount(draws, minlength=3).float() / 4000
    assert torch.allclose(freq, torch.tensor([0.7, 0.2, 0.1]), atol=0.03)


def test_two_interleaved_generations_do_not_disturb_each_other():
    model, tok = _model_and_tokenizer()
    alone = "".join(generate_text(model, tok, SampleConfig(temperature=1.0, length=30, seed=5)))
    a = generate_text(model, tok, SampleConfig(temperature=1.0, length=30, seed=5))
    b = generate_text(model, tok, SampleConfig(temperature=1.0, length=10, seed=6))
    out = []
    for _ in range(30):
        out.append(next(a))
        next(b, None)  # b finishes first, as in the TUI's compare mode
    assert "".join(out) == alone


@pytest.mark.parametrize("cell,vocab,embedding", [("lstm", 11, 0), ("lstm", 11, 5), ("gru", 11, 0), ("rnn", 11, 0),
                                                  ("peephole", 11, 5), ("cifg", 11, 0)])
def test_stepper_matches_the_full_forward(cell, vocab, embedding, monkeypatch):
    from charnn.models import stepper as stepper_mod

    torch.manual_seed(0)
    model = RNNLanguageModel(ModelConfig(vocab_size=vocab, layers=2, hidden=16, cell=cell, embedding=embedding))
    model.eval()
    ids = torch.randint(0, vocab, (3, 7))
    full, _, full_state = model(ids)
    for table in (True, False):  # the first-layer lookup table and the plain product agree
        monkeypatch.setattr(stepper_mod, "TABLE_MAX_MACS", 1 << 30 if table else 0)
        st = model.stepper(batch=3)
        assert (st.table is not None) == (table and cell != "gru" and cell != "rnn")
        logits = [st.logits(st.advance(ids[:, i])) for i in range(ids.size(1))]
        assert torch.allclose(torch.stack(logits, dim=1), full, atol=1e-5)
        with_c = cell not in ("gru", "rnn")
        for got, want in zip(st.state if with_c else (st.state,),
                             full_state if with_c else (full_state,), strict=True):
            assert torch.allclose(got, want, atol=1e-5)
    # a stepper started from a carried state continues exactly where forward stopped
    more = torch.randint(0, vocab, (3, 4))
    cont, _, _ = model(more, state=full_state)
    st = model.stepper(batch=3, state=full_state)
    logits = [st.logits(st.advance(more[:, i])) for i in range(more.size(1))]
    assert torch.allclose(torch.stack(logits, dim=1), cont, atol=1e-5)


def test_stepper_draws_follow_the_tempered_softmax():
    """The fused Gumbel-max draw samples softmax(logits / T): frequencies match at T=1 and T=0.5."""
    torch.manual_seed(0)
    model = RNNLanguageModel(ModelConfig(vocab_size=5, layers=1, hidden=8)).eval()
    st = model.stepper(batch=4000)
    top = st.advance(torch.zeros(4000, dtype=torch.long))
    logits = st.logits(top[:1])[0]
    with torch.no_grad():
        model.head.bias.copy_(torch.tensor([2.0, 1.0, 0.0, -1.0, 0.5]) - logits + model.head.bias)
    st = model.stepper(batch=4000)
    top = st.advance(torch.zeros(4000, dtype=torch.long))
    g = torch.Generator().manual_seed(3)
    for t in (1.0, 0.5):
        want = torch.softmax(st.logits(top[:1])[0] / t, dim=-1)
        draws = st.sample(top, t, g)
        freq = torch.bincount(draws, minlength=5).float() / 4000
        assert torch.allclose(freq, want, atol=0.03), (t, freq, want)
    # consecutive draws use fresh noise
    assert not torch.equal(st.sample(top, 1.0, g), st.sample(top, 1.0, g))


def test_long_prompts_are_read_by_the_full_network_with_the_same_result(monkeypatch):
    import charnn.decoding.sampling as sampling

    model, tok = _model_and_tokenizer()
    prime = "hello world " * 5
    cfg = SampleConfig(temperature=0.0, length=40, prime=prime, seed=0)
    monkeypatch.setattr(sampling, "SHORT_PROMPT", 10_000)
    stepped = "".join(generate_text(model, tok, cfg))
    monkeypatch.setattr(sampling, "SHORT_PROMPT", 4)
    monkeypatch.setattr(sampling, "PREFILL_WINDOW", 7)
    assert "".join(generate_text(model, tok, cfg)) == stepped
