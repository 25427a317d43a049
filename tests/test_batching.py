import numpy as np
import pytest

from charnn.errors import CharnnError
from charnn.text.dataset import StreamBatcher, fit_batch_shape, load_corpus


def test_targets_are_inputs_shifted_by_one():
    tokens = np.arange(1000, dtype=np.uint16)
    b = StreamBatcher(tokens, batch_size=4, seq_len=10)
    x, y, _ = b.window(3)
    assert x.shape == (4, 10) and y.shape == (4, 10)
    assert (y[:, :-1] == x[:, 1:]).all()
    assert (y == x + 1).all()  # on a ramp, the next token is always one more


def test_streams_are_contiguous_across_windows():
    tokens = np.arange(1000, dtype=np.uint16)
    b = StreamBatcher(tokens, batch_size=4, seq_len=10)
    x0, _, reset0 = b.window(0)
    x1, _, reset1 = b.window(1)
    assert reset0 and not reset1
    # each stream's second window starts right where its first one ended
    assert (x1[:, 0] == x0[:, -1] + 1).all()
    # streams start at evenly spaced, disjoint offsets
    assert list(x0[:, 0]) == [0, 249, 498, 747]


def test_epoch_wraps_and_resets_state():
    tokens = np.arange(101, dtype=np.uint16)
    b = StreamBatcher(tokens, batch_size=2, seq_len=10)
    assert b.windows == 5
    x5, _, reset = b.window(5)
    assert reset
    assert (x5 == b.window(0)[0]).all()


def test_ranks_take_disjoint_slices_of_the_streams():
    tokens = np.arange(1000, dtype=np.uint16)
    full = StreamBatcher(tokens, 4, 10).window(2)[0]
    r0 = StreamBatcher(tokens, 4, 10, rank=0, world=2).window(2)[0]
    r1 = StreamBatcher(tokens, 4, 10, rank=1, world=2).window(2)[0]
    assert (np.concatenate([r0, r1]) == full).all()


def test_short_corpus_shrinks_batch_and_says_so():
    b, t, note = fit_batch_shape(300, 32, 128)
    assert (300 - 1) // b >= t
    assert note and "--batch-size" in note
    with pytest.raises(CharnnError):
        fit_batch_shape(5, 32, 128)


def test_corpus_is_encoded_once_and_cached(small_text, charnn_home):
    first = load_corpus(small_text)
    entries = list((charnn_home / "cache" / "tokens").iterdir())
    assert len(entries) == 1
    mtime = (entries[0] / "tokens.bin").stat().st_mtime_ns
    second = load_corpus(small_text)
    assert isinstance(second.tokens, np.memmap)
    assert (entries[0] / "tokens.bin").stat().st_mtime_ns == mtime
    assert np.array_equal(first.tokens, second.tokens)
    assert second.tokenizer.decode(second.tokens.tolist()) == small_text.read_text()


def test_split_is_contiguous_with_validation_last(small_text):
    corpus = load_corpus(small_text)
    train, val = corpus.split(0.1)
    assert len(val) == int(len(corpus.tokens) * 0.1)
    assert np.array_equal(np.concatenate([train, val]), corpus.tokens)
