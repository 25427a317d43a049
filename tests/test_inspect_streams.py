"""The parallel-streams reading that `charnn eval` and `charnn inspect` share: every target scored
once, inspect's bits equal eval's, and the batched trace gives the same signals as the model's own
forward pass and as the one-stream trace of models/cells.py."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from charnn.config import ModelConfig
from charnn.inspect.activations import run_chunks, trace_streams
from charnn.inspect.finder import Finder
from charnn.inspect.probes import probe_signals
from charnn.inspect.session import inspect_text
from charnn.models.cells import trace
from charnn.models.lm import RNNLanguageModel
from charnn.scoring.streams import one_stream, parallel_reading, score_text, score_windows
from charnn.text.tokenizers import CharTokenizer

TEXT = "".join(f"{w} {i % 7}\n" * (1 + i % 3) for i, w in enumerate(("alpha", "beta (gamma)", '"delta"') * 40))


def _model(cell="lstm", layers=2, text=TEXT):
    tok = CharTokenizer.fit([text])
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=tok.vocab_size, cell=cell, layers=layers, hidden=16, embedding=8)
    return RNNLanguageModel(cfg).eval(), tok


@pytest.mark.parametrize("n", [2, 3, 40, 513, 1025, 5000])
def test_parallel_reading_scores_every_target_once_and_reads_every_token_once(n):
    for streams, warmup in ((64, 256), (4, 8), (1, 256), (7, 3)):
        r = parallel_reading(n, streams, warmup)
        assert np.array_equal(np.sort(r.positions[r.scored]), np.arange(n - 1))
        assert np.array_equal(np.sort(r.positions[r.read]), np.arange(n))
    r = parallel_reading(5000, 4, 8)
    assert len(r.positions) == 4 and not r.scored[1:, :8].any()  # rows after the first warm up unscored


def test_one_stream_reading_is_the_old_windowed_single_stream_score():
    model, tok = _model()
    ids = np.asarray(tok.encode_array(TEXT))
    with torch.inference_mode():
        old = score_windows(model, one_stream(ids, 64), tok.char_lengths(), torch.device("cpu"), bf16=False)
    new = score_text(model, ids, tok.char_lengths(), torch.device("cpu"), window=64, streams=1)
    assert new.tokens == old.tokens == len(ids) - 1 and new.chars == old.chars
    assert abs(new.nats - old.nats) < 1e-3
    # pieces read side by side after a warm-up score within rounding of the one stream's figure
    par = score_text(model, ids, tok.char_lengths(), torch.device("cpu"), window=64, streams=8, warmup=48)
    assert par.tokens == old.tokens and abs(par.bits_per_char - old.bits_per_char) < 1e-3


@pytest.mark.parametrize("cell", ["lstm", "peephole", "cifg"])
def test_inspect_bits_per_char_is_evals_figure_on_a_text_read_as_several_streams(cell):
    model, tok = _model(cell, layers=1)
    text = TEXT * 2
    ids = np.asarray(tok.encode_array(text))
    assert len(parallel_reading(len(ids)).positions) > 1  # long enough for several streams
    loaded = SimpleNamespace(model=model, tokenizer=tok, path="test.pt")
    result = inspect_text(loaded, text, find=True)
    evaluated = score_text(model, ids, tok.char_lengths(), torch.device("cpu"))
    assert result.bits_per_char == pytest.approx(evaluated.bits_per_char, abs=1e-6)
    assert np.isfinite(result.surprise.token_bits[1:]).all() and np.isnan(result.surprise.token_bits[0])


@pytest.mark.parametrize("cell", ["lstm", "peephole", "cifg", "gru", "rnn"])
def test_batched_trace_matches_the_forward_pass_and_the_one_stream_trace(cell):
    model, tok = _model(cell)
    x = torch.from_numpy(np.asarray(tok.encode_array(TEXT[:150]))).view(3, 50)
    with torch.inference_mode():
        emb = model.embed(x)
        out, state, layers = trace_streams(model.rnn, emb, None)
        ref_out, ref_state = model.rnn(emb)
        torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-4)
        for got, want in zip(state if isinstance(state, tuple) else (state,),
                             ref_state if isinstance(ref_state, tuple) else (ref_state,), strict=True):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
        _, _, one = trace(model.rnn, emb[1:2])  # the one-stream trace of the second stream
    for k, signals in enumerate(one):
        assert set(signals) == set(layers[k])
        for name, values in signals.items():
            torch.testing.assert_close(layers[k][name][1], values, atol=1e-5, rtol=1e-4)


def test_run_chunks_gives_every_token_its_state_once_and_the_finder_ignores_chunk_order():
    model, tok = _model()
    text = TEXT * 2
    ids = np.asarray(tok.encode_array(text))
    parts = list(run_chunks(model, ids, chunk=256, streams=8, warmup=32))
    seen = np.concatenate([p.index() for p in parts])
    assert np.array_equal(np.sort(seen), np.arange(len(ids)))
    probes = probe_signals(text)
    in_order, shuffled = Finder(probes), Finder(probes)
    for p in parts:
        in_order.add(p.start, p.layers, p.index())
    for p in reversed(parts):
        shuffled.add(p.start, p.layers, p.index())
    a, b = in_order.result(), shuffled.result()
    for key, r in a.correlations.items():
        np.testing.assert_allclose(r, b.correlations[key], atol=1e-6)
    # and the sums give Pearson's r as numpy computes it from the whole series
    c0 = torch.cat([p.layers[0]["c"] for p in parts]).numpy().astype(np.float64)[np.argsort(seen)]
    line = probes["line_position"]
    j = a.probes.index("line_position")
    assert a.correlations[(0, "c")][3, j] == pytest.approx(np.corrcoef(c0[:, 3], line)[0, 1], abs=1e-6)
