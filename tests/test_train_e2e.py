"""End to end on the standard corpus: a short CPU run must learn far more than letter frequencies."""

import math
from collections import Counter

from charnn.config import RunSettings
from charnn.training.events import Done, Eval, Sample
from charnn.training.trainer import train_stream


def unigram_entropy_bits(text: str) -> float:
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def test_short_cpu_run_beats_unigram_entropy_by_a_wide_margin(shakespeare, tmp_path):
    text = shakespeare.read_text(encoding="utf-8")
    h1 = unigram_entropy_bits(text)
    assert 4.5 < h1 < 5.0  # about 4.8 bits/char for tiny-shakespeare

    s = RunSettings(corpus=str(shakespeare))
    s.model.layers, s.model.hidden = 1, 128
    s.train.batch_size, s.train.seq_len, s.train.lr = 32, 64, 6e-3
    s.train.steps, s.train.eval_every, s.train.eval_tokens = 250, 125, 20000
    s.train.threads, s.train.sample_length = 1, 80
    events = list(train_stream(s, out=str(tmp_path / "run")))

    final = [e for e in events if isinstance(e, Eval)][-1]
    assert final.final and final.val_bpc < h1 - 1.3, (final.val_bpc, h1)
    samples = [e for e in events if isinstance(e, Sample)]
    assert samples and samples[-1].text.strip()
    assert [e for e in events if isinstance(e, Done)][0].reason == "budget"


def test_embedding_is_sized_to_the_vocabulary_unless_given(small_text, tmp_path):
    """0 = auto: a character vocabulary gets an embedding of its size (rounded up to 16), not --hidden;
    an explicit size and tied weights are kept, and the choice is what the checkpoint records."""
    import torch

    from charnn.presets import auto_embedding
    from charnn.runtime.checkpoint import load_checkpoint

    assert auto_embedding(256, 65) == 80 and auto_embedding(64, 65) == 64 and auto_embedding(512, 8000) == 512

    def run(name, **model):
        s = RunSettings(corpus=str(small_text))
        s.model.layers, s.model.hidden = 1, 96
        for k, v in model.items():
            setattr(s.model, k, v)
        s.train.batch_size, s.train.seq_len, s.train.steps, s.train.threads = 4, 16, 2, 1
        events = list(train_stream(s, out=str(tmp_path / name)))
        vocab = events[0].vocab_size
        ck = load_checkpoint(tmp_path / name / "last.pt")
        return vocab, ck["model_config"]["embedding"], ck["model"]["embed.weight"].shape

    vocab, emb, shape = run("auto")
    assert vocab < 80 and emb == auto_embedding(96, vocab) < 96 and shape == torch.Size([vocab, emb])
    assert run("given", embedding=96)[1:] == (96, torch.Size([vocab, 96]))
    assert run("tied", tie_weights=True)[2] == torch.Size([vocab, 96])


def test_closing_score_is_the_score_charnn_eval_gives_the_held_out_text(shakespeare, tmp_path):
    """The run's final figure reads the held-out text in a few long streams, so it is the figure
    `charnn eval` gives that text (one stream), not one lowered by 32 blank-state starts."""
    import numpy as np
    import torch

    from charnn.runtime.loading import load_model
    from charnn.scoring.evaluate import evaluate_lm_file
    from charnn.scoring.streams import score_stream

    s = RunSettings(corpus=str(shakespeare))
    s.model.layers, s.model.hidden = 1, 128
    s.train.batch_size, s.train.seq_len, s.train.lr = 32, 64, 6e-3
    s.train.steps, s.train.eval_every, s.train.eval_tokens = 150, 150, 20000
    s.train.threads, s.train.sample_length, s.train.bf16 = 1, 0, False
    events = list(train_stream(s, out=str(tmp_path / "run")))
    final = [e for e in events if isinstance(e, Eval)][-1]
    assert final.final

    text = shakespeare.read_text(encoding="utf-8")
    held_out = text[len(text) - int(len(text) * s.train.val_fraction):]
    (tmp_path / "val.txt").write_text(held_out, encoding="utf-8")
    one_stream = evaluate_lm_file(tmp_path / "run" / "last.pt", str(tmp_path / "val.txt"), device="cpu")
    assert abs(final.val_bpc - one_stream["bits_per_char"]) < 5e-4

    # what the training-shaped read (32 streams of windows of 64) would have said: further off
    m = load_model(tmp_path / "run" / "last.pt", "lm", "cpu")
    ids = np.asarray(m.tokenizer.encode_array(held_out))
    _, as_trained = score_stream(m.model, ids, m.tokenizer.char_lengths(), 32, 64, torch.device("cpu"), False)
    assert abs(as_trained - one_stream["bits_per_char"]) > 2 * abs(final.val_bpc - one_stream["bits_per_char"])
