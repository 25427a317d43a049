"""Shared checkpoints cannot run code, and charnn stays off the network (issue 7).

A checkpoint is a pickle inside a zip. A malicious one can carry an object whose
``__reduce__`` calls any function when unpickled. These tests build such files,
first prove the payload is live (an unsafe ``torch.load`` really runs it), then
show that every way charnn opens a checkpoint refuses the file and the payload
never runs. A second group patches the socket layer so that any connection
attempt during train / generate / eval fails the test.
"""

from __future__ import annotations

import io
import pickle
import socket
from pathlib import Path

import pytest
import torch

from charnn.cli import main
from charnn.errors import CharnnError
from charnn.runtime.checkpoint import FORMAT, VERSION, load_checkpoint
from tests.conftest import tiny_args


class CreatesMarker:
    """Unpickling this calls ``open(marker, "w")``: a harmless stand-in for running any code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def checkpoint_shaped(marker: Path) -> dict:
    """Everything a real charnn checkpoint has, plus the payload hidden in an innocent-looking field."""
    return {
        "format": FORMAT, "version": VERSION, "kind": "lm", "run_name": "gift",
        "settings": {"corpus": "x.txt"}, "model_config": {"vocab_size": 3, "layers": 1, "hidden": 4},
        "tokenizer": {"kind": "char", "chars": "abc", "specials": [], "note": CreatesMarker(marker)},
        "model": {"embed.weight": torch.zeros(3, 4)}, "step": 1,
    }


def zip_format(path: Path, marker: Path) -> Path:
    torch.save(checkpoint_shaped(marker), path)
    return path


def legacy_format(path: Path, marker: Path) -> Path:
    torch.save(checkpoint_shaped(marker), path, _use_new_zipfile_serialization=False)
    return path


def raw_pickle(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps(checkpoint_shaped(marker)))
    return path


def payload_as_the_whole_file(path: Path, marker: Path) -> Path:
    buf = io.BytesIO()
    torch.save(CreatesMarker(marker), buf)
    path.write_bytes(buf.getvalue())
    return path


MAKERS = [zip_format, legacy_format, raw_pickle, payload_as_the_whole_file]


@pytest.fixture(params=MAKERS, ids=lambda f: f.__name__)
def malicious(request, tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "PWNED"
    path = request.param(tmp_path / "gift.pt", marker)
    return path, marker


def test_the_payload_is_live_when_loaded_unsafely(malicious):
    """Without this the other tests would prove nothing."""
    path, marker = malicious
    try:
        torch.load(path, weights_only=False)
    except Exception:  # noqa: BLE001 - the payload has already run by the time anything fails
        pass
    assert marker.exists()


def test_load_checkpoint_refuses_the_payload_and_nothing_runs(malicious, monkeypatch):
    path, marker = malicious
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # a user's environment cannot undo it
    with pytest.raises(CharnnError, match="not a charnn checkpoint|not a usable charnn checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("command", ["generate", "eval", "resume", "latest-run"])
def test_every_command_that_opens_a_checkpoint_refuses_it(command, malicious, tmp_path, capsys, charnn_home):
    path, marker = malicious
    text = tmp_path / "t.txt"
    text.write_text("abc abc abc\n" * 20)
    run = charnn_home / "runs" / "gift"
    run.mkdir(parents=True)
    for name in ("last.pt", "best.pt"):
        (run / name).write_bytes(path.read_bytes())
    (run / "run.json").write_text('{"name": "gift", "mode": "lm", "updated": 1}')
    argv = {
        "generate": ["generate", "-c", str(path), "--length", "5"],
        "eval": ["eval", str(path), str(text)],
        "resume": ["train", "--resume", "gift", "--steps", "2"],
        "latest-run": ["generate", "--length", "5"],  # no -c: the newest run's checkpoint
    }[command]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and err.startswith("charnn: ")
    assert not marker.exists()


def test_listing_runs_reads_json_and_never_unpickles(malicious, charnn_home, capsys):
    path, marker = malicious
    run = charnn_home / "runs" / "gift"
    run.mkdir(parents=True)
    (run / "last.pt").write_bytes(path.read_bytes())
    (run / "run.json").write_text('{"name": "gift", "mode": "lm", "updated": 1}')
    assert main(["models"]) == 0
    assert "gift" in capsys.readouterr().out
    assert not marker.exists()


# -- no network -------------------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to connect or resolve a name fails the test (and is recorded)."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError(f"charnn tried to use the network: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


@pytest.mark.parametrize("tokenizer", ["char", "bpe"])
def test_train_generate_and_eval_make_no_network_connections(tokenizer, no_network, small_text, capsys):
    extra = ["--tokenizer", "bpe", "--vocab-size", "300"] if tokenizer == "bpe" else []
    assert main(["train", str(small_text), *tiny_args("--steps", "4", "--eval-every", "2", "--name", "net"),
                 *extra]) == 0
    assert main(["generate", "-c", "net", "--length", "20", "--seed", "1"]) == 0
    assert main(["eval", "net", str(small_text)]) == 0
    assert main(["models"]) == 0
    assert main(["corpora"]) == 0
    capsys.readouterr()
    assert no_network == []


def test_the_network_guard_itself_works(no_network):
    with pytest.raises(AssertionError, match="network"):
        socket.create_connection(("example.org", 80))
    assert len(no_network) == 1


def test_checkpoint_code_uses_only_the_safe_loader():
    """No module besides checkpoint.py may call torch.load or pickle.load; that one only with weights_only=True."""
    import re

    root = Path(__file__).resolve().parents[1] / "charnn"
    for path in root.rglob("*.py"):
        source = path.read_text()
        calls = re.findall(r"torch\.load\(([^)]*)\)", source)
        assert "pickle.load" not in source, path
        if path.name == "checkpoint.py":
            assert calls and all("weights_only=True" in c for c in calls), path
        else:
            assert not calls, path
