"""Built-in corpora: the catalog, name resolution, the python-stdlib builder, tinyshakespeare's
checksummed download (with the network faked), and the `charnn corpora` / `charnn train` front door."""

from __future__ import annotations

import hashlib
import json
import socket
import sys
import types
import urllib.error
from pathlib import Path

import pytest
from conftest import tiny_args

from charnn.cli import main
from charnn.corpora import cache, catalog, python_stdlib, tinyshakespeare
from charnn.corpora.catalog import resolve_corpus
from charnn.errors import CharnnError


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Tests never touch the network: any download attempt behaves as if the machine were offline."""

    def no_network(url, timeout=None):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(tinyshakespeare, "urlopen", no_network)


@pytest.fixture
def messages() -> list[str]:
    return []


@pytest.fixture
def no_shakespeare(monkeypatch):
    monkeypatch.delenv(tinyshakespeare.ENV, raising=False)


@pytest.fixture
def fake_stdlib(tmp_path) -> Path:
    """A small tree shaped like a stdlib: packages, a test dir, a non-UTF-8 file, a binary one."""
    root = tmp_path / "fakelib"
    files = {
        "zeta.py": "Z = 26\n",
        "abc.py": "def a():\n    return 1\n",
        "pkg/__init__.py": '"""pkg."""\n',
        "pkg/core.py": "class Core:\n    pass\n",
        "pkg/sub/deep.py": "DEEP = True\r\n",
        "test/test_abc.py": "assert False\n",
        "pkg/tests/test_core.py": "assert False\n",
        "site-packages/thirdparty.py": "import antigravity\n",
        "notes.txt": "not python\n",
        "empty.py": "   \n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8", newline="")
    (root / "latin1.py").write_bytes("s = 'caf\xe9'\n".encode("latin-1"))
    (root / "binary.py").write_bytes(b"x = 1\x00\x00\n")
    return root


class FakeResponse:
    def __init__(self, data: bytes):
        self.data = data

    def read(self, n: int = -1) -> bytes:
        return self.data if n < 0 else self.data[:n]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# -- catalog -----------------------------------------------------------------------


def test_catalog_lists_every_builtin_corpus_with_size_use_and_availability(shakespeare):
    entries = {e.name: e for e in catalog.catalog()}
    assert set(entries) == {"tinyshakespeare", "python-stdlib", "chitchat"}
    ts = entries["tinyshakespeare"]
    assert ts.available == "yes" and ts.size_bytes == 1_115_394 and ts.size == "1.1 MB"
    assert str(shakespeare) in ts.where and tinyshakespeare.URL in ts.source
    assert entries["python-stdlib"].available == "on first use"  # nothing built yet in this CHARNN_HOME
    assert entries["chitchat"].modes == ("chat", "lm")
    for e in entries.values():
        assert e.good_for and e.source and e.where
        assert json.loads(json.dumps(e.to_dict()))["name"] == e.name


def test_catalog_never_builds_or_downloads(monkeypatch, no_shakespeare):
    monkeypatch.setattr(python_stdlib, "build", lambda *a, **k: pytest.fail("listing built python-stdlib"))
    monkeypatch.setattr(tinyshakespeare, "download", lambda *a, **k: pytest.fail("listing downloaded"))
    entries = {e.name: e for e in catalog.catalog()}
    ts = entries["tinyshakespeare"]
    assert ts.available == "if online" and ts.size_bytes is None
    assert tinyshakespeare.ENV in ts.where  # says how to get it offline


def test_catalog_shows_python_stdlib_as_available_once_built():
    built = python_stdlib.build()
    entry = {e.name: e for e in catalog.catalog()}["python-stdlib"]
    assert entry.available == "yes" and entry.size_bytes == built.n_bytes
    assert str(built.path) in entry.where and f"{built.n_files} files" in entry.where


def test_corpora_command_prints_the_catalog(capsys, shakespeare):
    assert main(["corpora"]) == 0
    out = capsys.readouterr().out
    assert "available here" in out
    for name in ("tinyshakespeare", "python-stdlib", "chitchat"):
        assert f"\n{name} " in out
    ts_row = next(line for line in out.splitlines() if line.startswith("tinyshakespeare "))
    assert "1.1 MB" in ts_row and ts_row.rstrip().endswith("yes")
    assert str(shakespeare) in out
    assert "`charnn train` with no corpus uses tinyshakespeare" in out


# -- resolving names and paths ----------------------------------------------------------


def test_builtin_name_resolves_to_its_text_file(shakespeare, messages):
    assert resolve_corpus("tinyshakespeare", notify=messages.append) == shakespeare
    assert any("tinyshakespeare" in m for m in messages)
    stdlib = resolve_corpus("Python_Stdlib", notify=messages.append)  # case and _ are forgiven
    assert stdlib == python_stdlib.cached_path() and stdlib.stat().st_size > 100_000


def test_existing_path_wins_over_builtin_name(tmp_path, monkeypatch, messages):
    monkeypatch.chdir(tmp_path)
    Path("tinyshakespeare").write_text("my own text\n", encoding="utf-8")
    assert resolve_corpus("tinyshakespeare", notify=messages.append) == Path("tinyshakespeare")
    assert messages == []


def test_unknown_name_is_one_sentence_listing_the_builtin_names():
    with pytest.raises(CharnnError) as err:
        resolve_corpus("shakespear")
    msg = str(err.value)
    assert "shakespear" in msg and "does not exist" in msg
    for name in catalog.NAMES:
        assert name in msg
    assert "\n" not in msg and msg.count(". ") == 0


def test_missing_file_through_the_cli_is_one_clear_sentence(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.txt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("charnn: Corpus not found:") and "nope.txt" in err and "tinyshakespeare" in err
    assert "Traceback" not in err


def test_plain_text_corpus_is_refused_in_chat_mode():
    for name in ("tinyshakespeare", "python-stdlib"):
        with pytest.raises(CharnnError, match="not dialogue.*chitchat"):
            resolve_corpus(name, mode="chat")


def test_no_corpus_in_lm_mode_picks_tinyshakespeare_and_says_so(shakespeare, messages):
    assert resolve_corpus(None, notify=messages.append) == shakespeare
    assert messages == [f"no corpus given; training on built-in tinyshakespeare ({shakespeare})"]


def test_no_corpus_offline_falls_back_to_python_stdlib_and_says_why(no_shakespeare, messages):
    path = resolve_corpus(None, notify=messages.append)
    assert path == python_stdlib.cached_path() and path.stat().st_size > 100_000
    text = "\n".join(messages)
    assert "could not be downloaded" in text and tinyshakespeare.ENV in text
    assert messages[-1].startswith("no corpus given and tinyshakespeare is not available, so training on "
                                   "built-in python-stdlib")


def test_chitchat_resolves_to_dialogue_for_chat_and_flat_text_for_lm(tmp_path, monkeypatch, messages):
    dialogue, flat = tmp_path / "dialogue.txt", tmp_path / "flat.txt"
    fake = types.ModuleType("charnn.corpora.chitchat")
    fake.dialogue_file = lambda: dialogue
    fake.flat_text_file = lambda: flat
    fake.cached_files = lambda: []
    monkeypatch.setitem(sys.modules, "charnn.corpora.chitchat", fake)
    from charnn import corpora

    monkeypatch.setattr(corpora, "chitchat", fake, raising=False)
    assert resolve_corpus(None, mode="chat", notify=messages.append) == dialogue
    assert "chitchat" in messages[-1]
    assert resolve_corpus("chitchat", mode="chat", notify=messages.append) == dialogue
    assert resolve_corpus("chitchat", mode="lm", notify=messages.append) == flat


def test_chitchat_is_built_on_first_use_and_then_listed_as_available(monkeypatch, messages):
    from charnn.corpora import chitchat

    monkeypatch.setattr(chitchat, "conversations", lambda: [["hello there", "hi, how are you?"], ["bye", "see you"]])
    entry = {e.name: e for e in catalog.catalog()}["chitchat"]
    assert entry.available == "on first use" and entry.size_bytes is None
    path = resolve_corpus(None, mode="chat", notify=messages.append)
    assert path == chitchat.dialogue_file() and "hello there" in path.read_text(encoding="utf-8")
    assert any(m.startswith("building chitchat") for m in messages)
    entry = {e.name: e for e in catalog.catalog()}["chitchat"]
    assert entry.available == "yes" and entry.size_bytes == path.stat().st_size and path.name in entry.where
    flat = resolve_corpus("chitchat", mode="lm", notify=messages.append)
    assert flat != path and "A:" not in flat.read_text(encoding="utf-8")


# -- python-stdlib ---------------------------------------------------------------------


def test_python_stdlib_gathers_sources_in_sorted_order_skipping_tests_and_non_text(fake_stdlib):
    built = python_stdlib.build(fake_stdlib)
    text = built.path.read_text(encoding="utf-8")
    headers = [line[len("# ---- "):-len(" ----")] for line in text.splitlines() if line.startswith("# ---- ")]
    assert headers == ["abc.py", "pkg/__init__.py", "pkg/core.py", "pkg/sub/deep.py", "zeta.py"]
    assert "\r" not in text and "DEEP = True\n" in text
    assert "assert False" not in text and "antigravity" not in text and "caf" not in text
    assert built.n_files == 5 and built.n_bytes == len(text.encode("utf-8"))
    assert built.sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_python_stdlib_is_deterministic(fake_stdlib):
    first = python_stdlib.build(fake_stdlib).path.read_bytes()
    python_stdlib.cached_path().unlink()
    second = python_stdlib.build(fake_stdlib).path.read_bytes()
    assert first == second


def test_python_stdlib_stops_at_the_cap_with_whole_files(fake_stdlib):
    full = python_stdlib.build(fake_stdlib).path.read_text(encoding="utf-8")
    pieces = full.split("# ---- ")[1:]
    cap = len(("# ---- " + pieces[0] + "# ---- " + pieces[1]).encode()) + 3  # room for two files, not three
    small = python_stdlib.build(fake_stdlib, cap=cap)
    assert small.n_files == 2 and small.n_bytes <= cap
    assert small.path.read_text(encoding="utf-8") == "# ---- " + pieces[0] + "# ---- " + pieces[1]


def test_python_stdlib_is_cached_and_rebuilt_only_when_its_rules_change(fake_stdlib, monkeypatch):
    path = python_stdlib.corpus_file(fake_stdlib)
    real_build = python_stdlib.build
    monkeypatch.setattr(python_stdlib, "build", lambda *a, **k: pytest.fail("rebuilt a valid cache"))
    assert python_stdlib.corpus_file(fake_stdlib) == path
    calls = []
    monkeypatch.setattr(python_stdlib, "build", lambda *a, **k: calls.append(a) or real_build(*a, **k))
    python_stdlib.corpus_file(fake_stdlib, cap=50)  # another cap: the cached file does not match
    path.write_text("truncated", encoding="utf-8")  # damaged: size no longer matches the manifest
    python_stdlib.corpus_file(fake_stdlib, cap=50)
    assert len(calls) == 2


def test_python_stdlib_write_is_atomic(fake_stdlib, monkeypatch):
    good = python_stdlib.build(fake_stdlib).path.read_bytes()

    def failing_pieces(root, cap):
        yield "abc.py", b"# ---- abc.py ----\npartial"
        raise OSError("disk full")

    monkeypatch.setattr(python_stdlib, "_pieces", failing_pieces)
    with pytest.raises(OSError):
        python_stdlib.build(fake_stdlib)
    assert python_stdlib.cached_path().read_bytes() == good  # the old file is untouched
    leftovers = [p.name for p in python_stdlib.cached_path().parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_python_stdlib_of_the_running_python_is_real_source_under_the_cap():
    built = python_stdlib.build()
    assert 1_000_000 < built.n_bytes <= python_stdlib.CAP_BYTES and built.n_files > 50
    with open(built.path, encoding="utf-8") as f:
        head = f.read(2000)
    assert head.startswith("# ---- __future__.py ----\n")


def test_python_stdlib_missing_sources_is_a_clear_error(tmp_path):
    with pytest.raises(CharnnError, match="standard-library sources are not at"):
        python_stdlib.build(tmp_path / "nowhere")
    with pytest.raises(CharnnError, match="No readable Python source"):
        (tmp_path / "emptylib").mkdir()
        python_stdlib.build(tmp_path / "emptylib")


# -- tinyshakespeare ---------------------------------------------------------------------


def test_tinyshakespeare_checksum_matches_the_shared_copy(shakespeare):
    data = shakespeare.read_bytes()
    assert len(data) == tinyshakespeare.SIZE
    assert hashlib.sha256(data).hexdigest() == tinyshakespeare.SHA256


def test_tinyshakespeare_download_keeps_good_bytes_in_the_cache(shakespeare, no_shakespeare, monkeypatch):
    seen = []

    def fake_urlopen(url, timeout=None):
        seen.append((url, timeout))
        return FakeResponse(shakespeare.read_bytes())

    monkeypatch.setattr(tinyshakespeare, "urlopen", fake_urlopen)
    notes = []
    path = tinyshakespeare.corpus_file(notify=notes.append)
    assert path == tinyshakespeare.cached_path() and path.read_bytes() == shakespeare.read_bytes()
    assert seen == [(tinyshakespeare.URL, tinyshakespeare.TIMEOUT_S)] and "downloading" in notes[0]
    monkeypatch.setattr(tinyshakespeare, "urlopen", lambda *a, **k: pytest.fail("downloaded twice"))
    assert tinyshakespeare.corpus_file() == path
    assert {e.name: e for e in catalog.catalog()}["tinyshakespeare"].available == "yes"


def test_tinyshakespeare_download_with_a_bad_checksum_is_refused(shakespeare, no_shakespeare, monkeypatch):
    tampered = shakespeare.read_bytes().replace(b"ROMEO", b"ROMEA", 1)
    monkeypatch.setattr(tinyshakespeare, "urlopen", lambda url, timeout=None: FakeResponse(tampered))
    with pytest.raises(CharnnError, match="did not match its expected SHA-256") as err:
        tinyshakespeare.corpus_file()
    assert tinyshakespeare.ENV in str(err.value)
    assert not tinyshakespeare.cached_path().exists()
    assert list(tinyshakespeare.cached_path().parent.glob("*.tmp")) == []


@pytest.mark.parametrize("error", [
    urllib.error.URLError(socket.gaierror(-2, "Name or service not known")),
    TimeoutError("timed out"),
    ConnectionResetError(104, "Connection reset by peer"),
])
def test_tinyshakespeare_offline_is_one_sentence_saying_how_to_get_it(no_shakespeare, monkeypatch, error):
    def broken(url, timeout=None):
        raise error

    monkeypatch.setattr(tinyshakespeare, "urlopen", broken)
    with pytest.raises(CharnnError) as err:
        tinyshakespeare.corpus_file()
    msg = str(err.value)
    assert msg.startswith("tinyshakespeare is not on this machine and could not be downloaded")
    assert tinyshakespeare.URL in msg and f"set {tinyshakespeare.ENV}" in msg
    assert "\n" not in msg and msg.endswith(".")
    assert not tinyshakespeare.cached_path().exists()


def test_tinyshakespeare_env_pointing_nowhere_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(tinyshakespeare.ENV, str(tmp_path / "missing.txt"))
    with pytest.raises(CharnnError, match="CHARNN_TINYSHAKESPEARE is set to .*missing.txt, which is not a file"):
        resolve_corpus("tinyshakespeare")
    entry = {e.name: e for e in catalog.catalog()}["tinyshakespeare"]
    assert entry.available == "no" and "missing.txt" in entry.where


def test_cache_files_are_written_atomically_and_sizes_read_well(tmp_path):
    target = tmp_path / "d" / "f.txt"
    assert cache.write_atomic(target, [b"ab", b"cd"]) == 4 and target.read_bytes() == b"abcd"
    assert cache.fmt_size(999) == "999 B" and cache.fmt_size(1_115_394) == "1.1 MB"


# -- the front door ------------------------------------------------------------------------


def test_train_with_no_corpus_trains_on_the_default_builtin(shakespeare, capsys):
    assert main(["train", *tiny_args("--steps", "2", "--eval-every", "0", "--jsonl")]) == 0
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.out.splitlines()]
    assert events[0]["event"] == "start" and events[0]["settings"]["corpus"] == str(shakespeare)
    assert events[-1]["event"] == "done" and events[-1]["step"] == 2
    assert "no corpus given; training on built-in tinyshakespeare" in captured.err
