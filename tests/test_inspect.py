"""charnn inspect: surprise equals `charnn eval`, probes and the finder find what is planted, novelty
finds copied spans, gradient flow, the HTML page, and one sentence for each bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from charnn import paths
from charnn.cli import main
from charnn.config import ModelConfig
from charnn.inspect.finder import Finder
from charnn.inspect.gradients import gradient_flow
from charnn.inspect.novelty import SPAN, novelty, novelty_index
from charnn.inspect.probes import probe_signals
from charnn.inspect.session import UnitRef, inspect_text, load_for_inspection
from charnn.inspect.webpage import page
from charnn.models.lm import RNNLanguageModel
from charnn.runtime.checkpoint import save_checkpoint
from charnn.scoring.evaluate import evaluate_lm_file
from charnn.text.tokenizers import CharTokenizer

TEXT = 'ROMEO:\n  "Hello (to [you])," he said.\nJULIET:\n  Good night, sweet (prince)! </>\n' * 3


def _save(tmp_path, cell="lstm", layers=2, kind="lm"):
    torch.manual_seed(0)
    tok = CharTokenizer.fit([TEXT])
    cfg = ModelConfig(vocab_size=tok.vocab_size, cell=cell, layers=layers, hidden=12, embedding=8)
    model = RNNLanguageModel(cfg)
    path = tmp_path / f"{cell}-{kind}.pt"
    save_checkpoint(path, {"kind": kind, "model_config": cfg.to_dict(),
                           "tokenizer": tok.to_state(), "model": model.state_dict(),
                           "corpus": {"path": str(tmp_path / "corpus.txt")}})
    return path


@pytest.mark.parametrize("cell", ["lstm", "gru", "peephole"])
def test_bits_per_char_equals_charnn_eval_on_the_same_text(tmp_path, cell):
    path = _save(tmp_path, cell=cell)
    (tmp_path / "t.txt").write_text(TEXT)
    want = evaluate_lm_file(path, str(tmp_path / "t.txt"), device="cpu")["bits_per_char"]
    result = inspect_text(load_for_inspection(str(path), "cpu"), TEXT, chunk=7)  # chunks carry the state
    assert result.bits_per_char == pytest.approx(want, rel=1e-5)
    bits = result.surprise.char_bits
    assert np.isnan(bits[0]) and np.nansum(bits) / (len(TEXT) - 1) == pytest.approx(want, rel=1e-5)
    guesses = result.surprise.guesses(5, result_tokenizer(path))
    assert len(guesses) == 5 and sum(p for _, p in guesses) <= 1.0 + 1e-6


def result_tokenizer(path):
    return load_for_inspection(str(path), "cpu").tokenizer


def test_a_traced_unit_is_the_layers_value_at_every_character(tmp_path):
    path = _save(tmp_path)
    loaded = load_for_inspection(str(path), "cpu")
    unit = UnitRef(1, 3, "h")
    result = inspect_text(loaded, TEXT, (unit,), chunk=10)
    ids = torch.tensor(loaded.tokenizer.encode(TEXT)).unsqueeze(0)
    with torch.no_grad():
        out, _ = loaded.model.rnn(loaded.model.embed(ids))
    assert np.allclose(result.units[unit], out[0, :, 3].numpy(), atol=1e-5)


def test_probes_follow_the_text():
    p = probe_signals('AB:\n  x("a[b]")\n# c\n')
    assert p["line_position"][:5].tolist() == [0, 1, 2, 3, 0]
    assert p["capital_line"][0] == 1 and p["capital_line"][5] == 0
    assert p["indentation"][6] == 2
    assert p["bracket_depth"][p["bracket_depth"].argmax()] == 2
    assert p["inside_quotes"][8] == 1 and p["python_string"][9] == 1
    assert p["python_comment"][-2] == 1 and p["python_comment"][6] == 0
    assert p["word_start"][6] == 1 and p["word_start"][1] == 0


def test_finder_finds_a_planted_line_position_unit_and_counts_saturation():
    text = "".join("x" * n + "\n" for n in (5, 9, 3, 12, 7) * 20)
    probes = probe_signals(text)
    finder = Finder(probes)
    n = len(text)
    rng = np.random.default_rng(0)
    c = torch.tensor(rng.normal(size=(n, 8)), dtype=torch.float32)
    c[:, 5] = torch.tensor(probes["line_position"]) * 0.1
    gate = torch.full((n, 8), 0.5)
    gate[:, :2] = 0.95
    for start in range(0, n, 50):
        finder.add(start, [{"c": c[start : start + 50], "f": gate[start : start + 50]}])
    found = finder.result()
    best = found.best("line_position")
    assert (best.layer, best.unit, best.signal) == (0, 5, "c") and best.r == pytest.approx(1.0)
    assert found.best("python_comment") is None  # constant in this text: no r
    f = next(g for g in found.saturation if g.gate == "f")
    assert f.right == pytest.approx(2 / 8) and f.left == 0


def test_novelty_finds_copied_spans_and_caches_its_index(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("It was the best of times, it was the worst of times.\n" * 3)
    index = novelty_index(corpus)
    assert list((paths.cache_dir() / "novelty").glob("*.u64"))
    copied = "the best of times, it was"
    text = "Brand new words here. " + copied + " and more fresh words"
    result = novelty(index, text)
    a = text.index(copied) - 1  # the spaces either side are in the corpus too
    assert result.copied == [(a, a + len(copied) + 2)]
    assert result.new_share == pytest.approx(1 - (len(copied) + 2) / len(text))
    assert novelty(novelty_index(corpus), "x" * (SPAN - 1)).new_share == 1.0


@pytest.mark.parametrize("cell", ["rnn", "lstm", "cifg"])
def test_gradient_flow_gives_one_norm_per_step_back(tmp_path, cell):
    torch.manual_seed(0)
    tok = CharTokenizer.fit([TEXT])
    model = RNNLanguageModel(ModelConfig(vocab_size=tok.vocab_size, cell=cell, layers=2, hidden=12))
    flow = gradient_flow(model, tok.encode_array(TEXT), window=16, samples=4)
    assert len(flow.norms) == 16 and all(n > 0 for n in flow.norms)
    assert flow.at(1) is not None and flow.at(17) is None


def test_html_page_is_self_contained_and_holds_guesses(tmp_path):
    path = _save(tmp_path)
    loaded = load_for_inspection(str(path), "cpu")
    result = inspect_text(loaded, TEXT + "</script>", (UnitRef(0, 1, "c"),))
    html = page(result, loaded.tokenizer)
    assert html.count("</script>") == 2 and "http" not in html
    data = json.loads(html.split('type="application/json">')[1].split("</script>")[0].replace("<\\/", "</"))
    assert data["text"].endswith("</script>") and len(data["guesses"]) == len(data["starts"])
    assert "0:1 c" in data["units"]


def test_cli_inspect_find_json(tmp_path, capsys):
    path = _save(tmp_path)
    (tmp_path / "t.txt").write_text(TEXT)
    assert main(["inspect", "-c", str(path), str(tmp_path / "t.txt"), "--find", "--json",
                 "--html", str(tmp_path / "p.html")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bits_per_char"] > 0 and out["units"][0].keys() >= {"probe", "layer", "unit", "signal", "r"}
    assert (tmp_path / "p.html").is_file()


@pytest.mark.parametrize("argv,words", [
    (["hello there", "-c", "{chat}"], "chat model"),
    (["", "-c", "{lm}"], "empty"),
    (["héllo", "-c", "{lm}"], "never saw"),
    (["hello", "-c", "{lm}", "--unit", "0:99"], "does not exist"),
    (["hello", "-c", "{lm}", "--unit", "5:1"], "does not exist"),
])
def test_bad_input_is_one_sentence(tmp_path, capsys, argv, words):
    lm, chat = _save(tmp_path), _save(tmp_path, cell="gru", kind="chat")
    argv = [a.format(lm=lm, chat=chat) for a in argv]
    assert main(["inspect", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and err.count("\n") == 0 and "Traceback" not in err


def test_generate_novelty_says_plainly_when_the_corpus_is_missing(tmp_path, capsys):
    path = _save(tmp_path)
    assert main(["generate", "-c", str(path), "--novelty", "--length", "5"]) == 2
    assert "not on this machine" in capsys.readouterr().err


def test_most_surprising_words_are_ranked_by_their_bits_each_word_once():
    from charnn.inspect.surprise import Surprise, TokenLayout

    text = "ab  cd ab!"
    n = len(text)
    bits = np.array([np.nan, 1.0, 9.0, 9.0, 2.0, 2.0, 0.0, 5.0, 5.0, 0.5])  # spaces cost much, words less
    lay = TokenLayout(text, np.arange(n), np.arange(n), np.ones(n, dtype=np.int64), float(n - 1))
    s = Surprise(lay, bits, np.full((n, 1), -1), np.zeros((n, 1)), 0.0)
    spans = s.hot_spans(5)
    assert [text[a:b] for a, b, _ in spans] == ["ab", "cd", "!"]  # no whitespace, 'ab' once (its 10 bits)
    assert [round(v, 1) for _, _, v in spans] == [10.0, 4.0, 0.5]
