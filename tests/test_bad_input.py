"""Every bad input a user can give charnn (issue 7) ends in one clear sentence, never a traceback.

Each case goes through the real front door, ``charnn.cli.main([...])``, and checks
the whole contract: a non-zero exit, exactly one ``charnn: ...`` line on stderr,
no traceback, nothing on stdout, and nothing half-written (no run directory, no
half-built cache entry, no temporary file). Inputs that are unusual but fine
(a BOM, CRLF line ends, one enormous line, a short text) are shown to train.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
import torch

from charnn.cli import main
from charnn.runtime.checkpoint import load_checkpoint
from tests.conftest import tiny_args

SOME_TEXT = "".join(f"line {i}: the quick brown fox jumps over the lazy dog.\n" for i in range(60))


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_clear_sentence(code: int, out: str, err: str, *expected: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith("charnn: "), err
    for text in expected:
        assert text in lines[0], (text, lines[0])
    assert out == "", out
    return lines[0]


def assert_nothing_half_written(home: Path, *places: Path) -> None:
    runs = home / "runs"
    assert not runs.exists() or not any(runs.iterdir()), list(runs.iterdir())
    cache = home / "cache" / "tokens"
    if cache.exists():
        assert not [p for p in cache.iterdir() if p.name.startswith(".building-")]
    for place in (home, *places):
        if place.exists():
            assert not list(place.rglob("*.tmp")), list(place.rglob("*.tmp"))


# -- corpus ---------------------------------------------------------------------------------


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def corpus_missing(d, mp):
    return d / "no-such-file.txt", ["does not exist"]


def corpus_directory(d, mp):
    (d / "folder").mkdir()
    return d / "folder", ["is a directory"]


def corpus_unreadable(d, mp):
    p = _write(d / "secret.txt", SOME_TEXT.encode())
    p.chmod(0)
    if os.access(p, os.R_OK):  # root reads anything: answer as the OS would for a normal user
        real = os.access
        mp.setattr(os, "access", lambda path, mode, *a, **k: False if Path(path) == p else real(path, mode, *a, **k))
    return p, ["permission denied"]


def corpus_empty(d, mp):
    return _write(d / "empty.txt", b""), ["is empty"]


def corpus_whitespace_only(d, mp):
    return _write(d / "blank.txt", b" \n\t\n   \n" * 100), ["only whitespace"]


def corpus_binary(d, mp):
    return _write(d / "image.txt", SOME_TEXT.encode()[:500] + bytes(range(256)) * 4), ["binary", "NUL"]


def corpus_invalid_utf8(d, mp):
    data = SOME_TEXT.encode()
    at = data.index(b"line 7:")
    return _write(d / "latin1.txt", data[:at] + "café\n".encode("latin-1") + data[at:]), [
        "not valid UTF-8", "line 8", f"byte offset {at + 3}", "--errors replace", "--encoding"]


def corpus_utf16(d, mp):
    return _write(d / "wide.txt", SOME_TEXT.encode("utf-16")), ["UTF-16", "--encoding utf-16"]


def corpus_too_small_for_validation(d, mp):
    return _write(d / "tiny.txt", b"abcdefghijklmno"), ["too small for a validation split"]


def corpus_too_short_to_train(d, mp):
    # a validation split is possible but what is left cannot fill even one 8-token window
    return _write(d / "short.txt", b"abcdefghijkl"), ["too short"], ["--val-fraction", "0.5"]


CORPUS_CASES = [corpus_missing, corpus_directory, corpus_unreadable, corpus_empty, corpus_whitespace_only,
                corpus_binary, corpus_invalid_utf8, corpus_utf16, corpus_too_small_for_validation,
                corpus_too_short_to_train]


@pytest.mark.parametrize("case", CORPUS_CASES, ids=lambda c: c.__name__)
def test_bad_corpus_is_one_clear_sentence_and_leaves_nothing_behind(case, tmp_path, monkeypatch, capsys,
                                                                    charnn_home):
    path, expected, *extra = case(tmp_path, monkeypatch)
    code, out, err = run_cli(["train", path, *tiny_args("--steps", "2"), *(extra[0] if extra else [])], capsys)
    assert_one_clear_sentence(code, out, err, *expected)
    assert code == 2
    assert_nothing_half_written(charnn_home, tmp_path)


def train_ok(corpus: Path, capsys, *extra: str) -> tuple[str, dict]:
    code, out, err = run_cli(["train", corpus, *tiny_args("--steps", "2", "--eval-every", "2", "--name", "ok",
                                                          *extra)], capsys)
    assert code == 0, err
    assert "Traceback" not in err
    return err, load_checkpoint(Path(os.environ["CHARNN_HOME"]) / "runs" / "ok" / "last.pt")


def test_utf8_with_bom_trains_and_the_bom_is_not_a_character(tmp_path, capsys):
    corpus = _write(tmp_path / "bom.txt", b"\xef\xbb\xbf" + SOME_TEXT.encode())
    _, ck = train_ok(corpus, capsys)
    assert "\ufeff" not in ck["tokenizer"]["chars"]


def test_crlf_line_ends_train_as_plain_newlines(tmp_path, capsys):
    corpus = _write(tmp_path / "dos.txt", SOME_TEXT.replace("\n", "\r\n").encode())
    _, ck = train_ok(corpus, capsys)
    assert "\r" not in ck["tokenizer"]["chars"] and "\n" in ck["tokenizer"]["chars"]


@pytest.mark.parametrize("tokenizer", ["char", "bpe"])
def test_one_enormous_line_trains(tokenizer, tmp_path, capsys):
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    line = " ".join(words[(i * 7 + i // 3) % len(words)] for i in range(300_000))  # ~2 MB, no newline
    corpus = _write(tmp_path / "oneline.txt", line.encode())
    extra = ["--tokenizer", "bpe", "--vocab-size", "290"] if tokenizer == "bpe" else []
    _, ck = train_ok(corpus, capsys, *extra)
    assert ck["step"] == 2


def test_corpus_shorter_than_one_batch_window_shrinks_the_batch_and_says_so(tmp_path, capsys):
    corpus = _write(tmp_path / "short.txt", SOME_TEXT[:600].encode())
    err, ck = train_ok(corpus, capsys, "--batch-size", "64", "--seq-len", "256")
    assert "Corpus is short: using --batch-size" in err
    assert ck["settings"]["train"]["batch_size"] * ck["settings"]["train"]["seq_len"] < 600


def test_invalid_utf8_trains_with_errors_replace_and_utf16_with_its_encoding(tmp_path, capsys, monkeypatch):
    bad = corpus_invalid_utf8(tmp_path, monkeypatch)[0]
    _, ck = train_ok(bad, capsys, "--errors", "replace")
    assert "\ufffd" in ck["tokenizer"]["chars"]
    wide = corpus_utf16(tmp_path, monkeypatch)[0]
    _, ck = train_ok(wide, capsys, "--encoding", "utf-16", "--name", "wide")
    assert "\ufeff" not in ck["tokenizer"]["chars"] and "q" in ck["tokenizer"]["chars"]


# -- settings ---------------------------------------------------------------------------


SETTINGS_CASES = [
    (["--layers", "0"], "--layers"),
    (["--layers", "-2"], "--layers"),
    (["--hidden", "0"], "--hidden"),
    (["--hidden", "1000000"], "--hidden"),
    (["--embedding", "-1"], "--embedding"),
    (["--batch-size", "0"], "--batch-size"),
    (["--batch-size", "-8"], "--batch-size"),
    (["--batch-size", "10000000"], "--batch-size"),
    (["--seq-len", "0"], "--seq-len"),
    (["--seq-len", "99999999"], "--seq-len"),
    (["--lr", "0"], "--lr"),
    (["--lr", "-0.1"], "--lr"),
    (["--lr", "1e9"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--dropout", "1.5"], "--dropout"),
    (["--dropout", "-0.1"], "--dropout"),
    (["--steps", "-1"], "--steps"),
    (["--epochs", "-1"], "--epochs"),
    (["--warmup", "-5"], "--warmup"),
    (["--weight-decay", "-0.1"], "--weight-decay"),
    (["--weight-decay", "nan"], "--weight-decay"),
    (["--ema", "1"], "--ema"),
    (["--ema", "-0.5"], "--ema"),
    (["--ema", "nan"], "--ema"),
    (["--val-fraction", "0"], "--val-fraction"),
    (["--val-fraction", "1.5"], "--val-fraction"),
    (["--eval-every", "-1"], "--eval-every"),
    (["--sample-length", "-1"], "--sample-length"),
    (["--sample-length", "1000000000"], "--sample-length"),
    (["--patience", "-1"], "--patience"),
    (["--threads", "-1"], "--threads"),
    (["--layers", "64", "--hidden", "16384"], "needs about"),  # terabytes: refused before allocating
    (["--device", "tpu"], "--device"),
    (["--tokenizer", "bpe", "--vocab-size", "1"], "--vocab-size"),
    (["--tokenizer", "bpe", "--vocab-size", "5000000"], "--vocab-size"),
    (["--tokenizer", "bpe", "--vocab-size", "4000"], "larger than this text supports"),
    (["--teacher-forcing", "0.5"], "--teacher-forcing applies to chat models only"),
    (["--mode", "chat", "--teacher-forcing", "1.5"], "--teacher-forcing takes a ratio between 0 and 1"),
    (["--mode", "chat", "--teacher-forcing", "nan"], "--teacher-forcing"),
    (["--mode", "chat", "--teacher-forcing", "cosine:100"], "unknown shape 'cosine'"),
    (["--mode", "chat", "--teacher-forcing", "linear:0:0.5"], "STEPS must be a whole number"),
    (["--mode", "chat", "--teacher-forcing", "linear:100:2"], "outside 0..1"),
    (["--mode", "chat", "--teacher-forcing", "linear:100:0.5:1"], "too many parts"),
]


@pytest.mark.parametrize("flags,expected", SETTINGS_CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_bad_training_setting_is_one_clear_sentence(flags, expected, tmp_path, capsys, charnn_home):
    corpus = _write(tmp_path / "text.txt", SOME_TEXT.encode())
    code, out, err = run_cli(["train", corpus, *tiny_args("--steps", "2"), *flags], capsys)
    assert_one_clear_sentence(code, out, err, expected)
    assert_nothing_half_written(charnn_home, tmp_path)


@pytest.mark.parametrize("flags,expected", [
    (["--batch-size", "10000000"], "--batch-size"),
    (["--seq-len", "99999999"], "--seq-len"),
    (["--batch-size", "60000", "--seq-len", "60000"], "needs about"),
    (["--layers", "100000"], "needs about"),
])
def test_a_bad_size_with_the_width_left_to_charnn_is_one_clear_sentence(flags, expected, tmp_path, capsys,
                                                                       charnn_home):
    """With a time budget and no --hidden, the width probe runs before the trainer: it must not be
    the thing that allocates an impossible model or batch."""
    corpus = _write(tmp_path / "text.txt", SOME_TEXT.encode())
    code, out, err = run_cli(["train", corpus, "--time", "5", "--device", "cpu", *flags], capsys)
    assert_one_clear_sentence(code, out, err, expected)
    assert_nothing_half_written(charnn_home, tmp_path)


def test_device_cuda_without_cuda_is_one_clear_sentence(tmp_path, capsys, charnn_home):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    corpus = _write(tmp_path / "text.txt", SOME_TEXT.encode())
    code, out, err = run_cli(["train", corpus, *tiny_args("--steps", "2"), "--device", "cuda"], capsys)
    assert_one_clear_sentence(code, out, err, "--device cuda", "no CUDA")
    assert_nothing_half_written(charnn_home, tmp_path)


def test_batch_too_big_for_memory_is_refused_naming_one_that_fits(tmp_path, capsys, monkeypatch, charnn_home):
    from charnn.training import memory

    monkeypatch.setattr(memory, "available_bytes", lambda device: 400_000_000)  # a 400 MB machine
    corpus = _write(tmp_path / "text.txt", (SOME_TEXT * 40).encode())
    code, out, err = run_cli(["train", corpus, "--layers", "2", "--hidden", "512", "--batch-size", "256",
                              "--seq-len", "256", "--steps", "2", "--threads", "1"], capsys)
    line = assert_one_clear_sentence(code, out, err, "--batch-size 256 --seq-len 256 needs about")
    fits = int(line.split("; --batch-size ")[1].split()[0])
    assert 1 <= fits < 256
    assert_nothing_half_written(charnn_home, tmp_path)


SAMPLING_CASES = [
    (["--length", "-1"], "--length"),
    (["--temp", "-1"], "--temp"),
    (["--top-p", "0"], "--top-p"),
    (["--top-p", "1.5"], "--top-p"),
    (["--top-k", "-3"], "--top-k"),
    (["--num-samples", "0"], "--num-samples"),
]


@pytest.mark.parametrize("flags,expected", SAMPLING_CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_bad_sampling_setting_is_one_clear_sentence(flags, expected, lm_checkpoint, capsys):
    code, out, err = run_cli(["generate", "-c", lm_checkpoint, *flags], capsys)
    assert_one_clear_sentence(code, out, err, expected)


def test_bad_eval_setting_is_one_clear_sentence(lm_checkpoint, tmp_path, capsys):
    text = _write(tmp_path / "t.txt", SOME_TEXT.encode())
    code, out, err = run_cli(["eval", lm_checkpoint, text, "--max-tokens", "-5"], capsys)
    assert_one_clear_sentence(code, out, err, "--max-tokens")


# -- checkpoints ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lm_checkpoint(tmp_path_factory) -> Path:
    """One tiny trained language model shared by the checkpoint and prompt cases (read-only)."""
    from charnn.config import RunSettings
    from charnn.training.trainer import train_stream

    root = tmp_path_factory.mktemp("lm")
    corpus = _write(root / "text.txt", SOME_TEXT.encode())
    mp = pytest.MonkeyPatch()
    mp.setenv("CHARNN_HOME", str(root / "home"))
    try:
        s = RunSettings(corpus=str(corpus))
        s.model.layers, s.model.hidden = 1, 32
        s.train.batch_size, s.train.seq_len, s.train.threads = 4, 32, 1
        s.train.steps, s.train.eval_every, s.train.sample_length = 2, 2, 0
        list(train_stream(s, out=str(root / "run")))
    finally:
        mp.undo()
    path = root / "run" / "last.pt"
    os.chmod(path, 0o444)
    return path


def ckpt_missing(good: Path, d: Path) -> tuple[Path, list[str]]:
    return d / "never-saved.pt", ["never-saved.pt"]


def ckpt_truncated(good, d):
    data = good.read_bytes()
    return _write(d / "half.pt", data[: len(data) // 2]), ["truncated or corrupted"]


def ckpt_corrupted_bytes(good, d):
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as z:  # flip bytes inside the largest tensor, the header left intact
        info = max(z.infolist(), key=lambda i: i.file_size)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 64
    for i in range(start, start + 64):
        data[i] ^= 0x5A
    return _write(d / "flipped.pt", bytes(data)), ["truncated or corrupted"]


def _resaved(good: Path, path: Path, **changes) -> Path:
    ck = torch.load(good, weights_only=True)
    ck.update(changes)
    torch.save(ck, path)
    return path


def ckpt_other_format_version(good, d):
    return _resaved(good, d / "future.pt", version=99), ["different charnn checkpoint format", "version 99"]


def ckpt_chat_given_to_generate(good, d):
    return _resaved(good, d / "chat.pt", kind="chat"), ["is a chat model", "charnn chat"]


def ckpt_text_file(good, d):
    return _write(d / "notes.pt", b"these are my notes, not a model\n"), ["not a usable charnn checkpoint"]


def ckpt_empty_file(good, d):
    return _write(d / "zero.pt", b""), ["is empty"]


def ckpt_other_zip(good, d):
    with zipfile.ZipFile(d / "photos.pt", "w") as z:
        z.writestr("a.txt", "hello")
    return d / "photos.pt", ["not a usable charnn checkpoint"]


def ckpt_foreign_torch_file(good, d):
    torch.save({"state_dict": {"w": torch.zeros(2)}}, d / "someone-elses.pt")
    return d / "someone-elses.pt", ["is not a charnn checkpoint"]


def ckpt_plain_pickle(good, d):
    import pickle

    return _write(d / "pickled.pt", pickle.dumps({"format": "charnn-checkpoint"})), ["not a charnn checkpoint"]


def ckpt_empty_run_directory(good, d):
    (d / "run-without-checkpoints").mkdir()
    return d / "run-without-checkpoints", ["holds no checkpoint"]


CHECKPOINT_CASES = [ckpt_missing, ckpt_truncated, ckpt_corrupted_bytes, ckpt_other_format_version,
                    ckpt_chat_given_to_generate, ckpt_text_file, ckpt_empty_file, ckpt_other_zip,
                    ckpt_foreign_torch_file, ckpt_plain_pickle, ckpt_empty_run_directory]


@pytest.mark.parametrize("case", CHECKPOINT_CASES, ids=lambda c: c.__name__)
def test_bad_checkpoint_given_to_generate_is_one_clear_sentence(case, lm_checkpoint, tmp_path, capsys):
    path, expected = case(lm_checkpoint, tmp_path)
    code, out, err = run_cli(["generate", "-c", path, "--length", "5"], capsys)
    assert_one_clear_sentence(code, out, err, *expected)


@pytest.mark.parametrize("case", [ckpt_truncated, ckpt_corrupted_bytes, ckpt_other_format_version, ckpt_text_file],
                         ids=lambda c: c.__name__)
def test_bad_checkpoint_given_to_eval_and_resume_is_one_clear_sentence(case, lm_checkpoint, tmp_path, capsys,
                                                                        charnn_home):
    path, expected = case(lm_checkpoint, tmp_path)
    text = _write(tmp_path / "t.txt", SOME_TEXT.encode())
    code, out, err = run_cli(["eval", path, text], capsys)
    assert_one_clear_sentence(code, out, err, *expected)
    run = tmp_path / "broken-run"
    run.mkdir()
    os.replace(path, run / "last.pt")
    code, out, err = run_cli(["train", "--resume", run], capsys)
    assert_one_clear_sentence(code, out, err, *expected)
    assert sorted(p.name for p in run.iterdir()) == ["last.pt"]


def test_language_model_given_to_chat_is_one_clear_sentence(lm_checkpoint, capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("hello\n"))
    code, out, err = run_cli(["chat", "-c", lm_checkpoint], capsys)
    assert_one_clear_sentence(code, out, err, "is a language model, not a chat model", "charnn generate")


def test_corrupted_checkpoint_is_caught_although_torch_would_load_it(lm_checkpoint, tmp_path):
    """The flipped-bytes case is real: torch ignores the zip CRCs and would hand back damaged weights."""
    path, _ = ckpt_corrupted_bytes(lm_checkpoint, tmp_path)
    damaged = torch.load(path, weights_only=True)["model"]
    good = torch.load(lm_checkpoint, weights_only=True)["model"]
    assert any(not torch.equal(damaged[k], good[k]) for k in good)


# -- prompts ----------------------------------------------------------------------------------


def test_prompt_with_characters_outside_the_vocabulary_is_one_clear_sentence(lm_checkpoint, capsys):
    code, out, err = run_cli(["generate", "-c", lm_checkpoint, "--prime", "naïve ☃ 漢字", "--length", "5"], capsys)
    line = assert_one_clear_sentence(code, out, err, "never saw in training")
    assert "'☃'" in line and "'漢'" in line  # it names them; stdout stayed empty (no echoed prompt)


def test_empty_prompt_generates_from_the_start_token(lm_checkpoint, capsys):
    code, out, err = run_cli(["generate", "-c", lm_checkpoint, "--prime", "", "--length", "30", "--seed", "1"],
                             capsys)
    assert code == 0 and err == ""
    assert len(out.rstrip("\n")) >= 25  # a newline start token may open the sample


def test_very_long_prompt_is_read_in_windows_and_continued(lm_checkpoint, capsys, monkeypatch):
    import charnn.decoding.sampling
    import charnn.models.lm

    calls = []
    real = charnn.models.lm.RNNLanguageModel.forward

    def counting_forward(self, idx, *a, **k):
        calls.append(idx.shape[1])
        return real(self, idx, *a, **k)

    monkeypatch.setattr(charnn.models.lm.RNNLanguageModel, "forward", counting_forward)
    prime = SOME_TEXT * 40  # ~100k characters
    code, out, err = run_cli(["generate", "-c", lm_checkpoint, "--prime", prime, "--length", "20", "--seed", "3"],
                             capsys)
    assert code == 0 and err == ""
    assert out.startswith(prime) and len(out) >= len(prime) + 20
    assert max(calls) <= charnn.decoding.sampling.PREFILL_WINDOW  # never one giant forward pass

