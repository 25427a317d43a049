"""The step-wise LSTM cells: the gates re-computed from nn.LSTM's weights reproduce its outputs,
the peephole and coupled-gate variants have correct gradients, train, save, resume and generate."""

from __future__ import annotations

import pytest
import torch

from charnn.config import ModelConfig, RunSettings, SampleConfig
from charnn.decoding.sampling import generate_text
from charnn.models.cells import StepwiseLSTM, trace
from charnn.models.lm import RNNLanguageModel
from charnn.runtime.loading import load_model
from charnn.training.events import Done
from charnn.training.trainer import train_stream


def test_gates_recomputed_from_fused_lstm_weights_reproduce_its_h_and_c():
    torch.manual_seed(0)
    rnn = torch.nn.LSTM(7, 16, num_layers=2, batch_first=True).eval()
    x = torch.randn(1, 40, 7)
    state = (torch.randn(2, 1, 16), torch.randn(2, 1, 16))
    want, (h_n, c_n) = rnn(x, state)
    got, (h, c), layers = trace(rnn, x, state)
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.allclose(h, h_n, atol=1e-5) and torch.allclose(c, c_n, atol=1e-5)
    for k, sig in enumerate(layers):
        assert set(sig) == {"c", "h", "i", "f", "o", "g"}
        # h = o * tanh(c) at every step, from the re-computed gates and cell states
        assert torch.allclose(sig["o"] * torch.tanh(sig["c"]), sig["h"], atol=1e-5)
        assert torch.allclose(sig["c"][-1], c_n[k, 0], atol=1e-5)


@pytest.mark.parametrize("variant", ["peephole", "cifg"])
def test_variant_gradients_match_finite_differences(variant):
    torch.manual_seed(0)
    cell = StepwiseLSTM(3, 4, num_layers=2, variant=variant).double()
    x = torch.randn(2, 5, 3, dtype=torch.double, requires_grad=True)
    names = [n for n, _ in cell.named_parameters()]

    def run(inp, *weights):
        out, (h, c) = torch.func.functional_call(cell, dict(zip(names, weights, strict=True)), (inp,))
        return (out * torch.linspace(-1, 1, out.size(-1), dtype=out.dtype)).sum() + c.sum()

    weights = [p.detach().clone().requires_grad_() for p in cell.parameters()]
    assert torch.autograd.gradcheck(run, (x, *weights))


def test_cifg_input_gate_is_one_minus_forget_and_peephole_reads_the_cell():
    torch.manual_seed(0)
    x = torch.randn(1, 6, 3)
    _, _, layers = trace(StepwiseLSTM(3, 4, variant="cifg"), x)
    assert torch.allclose(layers[0]["i"], 1 - layers[0]["f"])
    peep = StepwiseLSTM(3, 4, variant="peephole")
    before, _ = peep(x)
    with torch.no_grad():
        peep.weight_ch_l0.add_(1.0)
    after, _ = peep(x)
    assert not torch.allclose(before, after)


@pytest.mark.parametrize("cell", ["peephole", "cifg"])
def test_variant_trains_saves_resumes_and_generates(cell, small_text, tmp_path):
    s = RunSettings(corpus=str(small_text))
    s.model.cell, s.model.layers, s.model.hidden = cell, 2, 16
    s.train.batch_size, s.train.seq_len, s.train.threads, s.train.steps = 4, 16, 1, 4
    s.train.warmup_steps, s.train.sample_length = 1, 10
    done = [e for e in train_stream(s, out=str(tmp_path / "run")) if isinstance(e, Done)]
    assert done and done[0].step == 4
    resumed = [e for e in train_stream(resume=str(tmp_path / "run"), budget={"steps": 6}) if isinstance(e, Done)]
    assert resumed[0].step == 6
    loaded = load_model(tmp_path / "run" / "last.pt", "lm", "cpu")
    assert loaded.model.config.cell == cell
    text = "".join(generate_text(loaded.model, loaded.tokenizer, SampleConfig(length=30, seed=1)))
    assert len(text) == 30


def test_lstm_stays_the_default_cell():
    assert ModelConfig().cell == "lstm"
    assert isinstance(RNNLanguageModel(ModelConfig(vocab_size=5, hidden=8, layers=1)).rnn, torch.nn.LSTM)
