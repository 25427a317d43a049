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
    from charnn.training.checkpoint import load_checkpoint

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
