"""One scoring module: a text's loss read as training reads it and as `charnn eval` reads it."""

from __future__ import annotations

import numpy as np
import torch

from charnn.config import ModelConfig
from charnn.models.lm import RNNLanguageModel
from charnn.scoring import Score
from charnn.scoring.streams import one_stream, score_stream, score_text
from charnn.text.tokenizers import CharTokenizer


def _model_and_ids(n_chars: int):
    text = ("the quick brown fox jumps over the lazy dog\n" * 50)[:n_chars]
    tok = CharTokenizer.fit([text])
    torch.manual_seed(0)
    model = RNNLanguageModel(ModelConfig(vocab_size=tok.vocab_size, layers=1, hidden=16)).eval()
    return model, tok, np.asarray(tok.encode_array(text))


def test_eval_reading_scores_every_token_including_a_short_last_window():
    model, tok, ids = _model_and_ids(101)
    windows = list(one_stream(ids, 32))
    assert [y.shape[1] for _, y in windows] == [32, 32, 32, 4]
    assert np.array_equal(np.concatenate([y for _, y in windows], axis=1)[0], ids[1:])
    score = score_text(model, ids, tok.char_lengths(), torch.device("cpu"), window=32)
    assert score.tokens == len(ids) - 1 and score.chars == len(ids) - 1


def test_one_training_stream_over_whole_windows_gives_the_eval_score():
    model, tok, ids = _model_and_ids(129)  # 128 targets: four whole windows of 32
    nats, bpc = score_stream(model, ids, tok.char_lengths(), 1, 32, torch.device("cpu"), bf16=False)
    whole = score_text(model, ids, tok.char_lengths(), torch.device("cpu"), window=32)
    assert abs(nats - whole.nats_per_token) < 1e-6 and abs(bpc - whole.bits_per_char) < 1e-6
    # and the state is carried: scoring the windows from blank states gives another figure
    blank = sum(score_text(model, ids[i : i + 33], tok.char_lengths(), torch.device("cpu"), window=32).nats
                for i in range(0, 128, 32))
    assert abs(blank - whole.nats) > 1e-3


def test_a_score_turns_nats_into_bits_per_character():
    score = Score(nats=np.log(2) * 30, tokens=10, chars=15)
    assert abs(score.bits_per_char - 2.0) < 1e-12 and abs(score.nats_per_token - np.log(2) * 3) < 1e-12
