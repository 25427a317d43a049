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
