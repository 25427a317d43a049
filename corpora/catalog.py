"""Built-in corpus names, resolved to text files on this machine.

``catalog()`` describes every built-in corpus (the CLI's ``charnn corpora`` and
the TUI both render it); ``resolve_corpus`` turns what the user typed, a path
or a built-in name or nothing, into a text file, building or fetching it on
first use. Nothing here trains or imports torch.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from charnn.corpora import python_stdlib, tinyshakespeare
from charnn.corpora.cache import corpora_cache_dir, fmt_size
from charnn.errors import CharnnError

Notify = Callable[[str], None]

DEFAULT_LM = tinyshakespeare.NAME
FALLBACK_LM = python_stdlib.NAME  # always buildable offline
DEFAULT_CHAT = "chitchat"
NAMES = (DEFAULT_CHAT, python_stdlib.NAME, tinyshakespeare.NAME)


@dataclass(frozen=True)
class CatalogEntry:
    """One built-in corpus as a listing shows it."""

    name: str
    modes: tuple[str, ...]  # the --mode values it serves
    good_for: str  # one line
    size: str  # human-readable; "about"/"up to" when not built yet
    size_bytes: int | None  # exact, when the file is here
    available: str  # "yes" | "on first use" | "if online" | "no"
    where: str  # where it is, or where it would come from
    source: str  # where the text originally comes from

    def to_dict(self) -> dict:
        d = asdict(self)
        d["modes"] = list(self.modes)
        return d


def _say(message: str) -> None:
    print(f"charnn: {message}", file=sys.stderr, flush=True)


def _tinyshakespeare_entry() -> CatalogEntry:
    good_for = ("language models: Shakespeare's plays (about 40,000 lines), the classic char-RNN demo; "
                "names, verse and dialogue show up within minutes on a CPU")
    source = f"{tinyshakespeare.URL} (SHA-256 checked)"
    size, size_bytes = fmt_size(tinyshakespeare.SIZE), None
    try:
        found = tinyshakespeare.locate()
    except CharnnError as e:
        return CatalogEntry(tinyshakespeare.NAME, ("lm",), good_for, size, None, "no", str(e), source)
    if found:
        size_bytes = found.path.stat().st_size
        how = f"from ${tinyshakespeare.ENV}" if found.origin == "env" else "downloaded"
        return CatalogEntry(tinyshakespeare.NAME, ("lm",), good_for, fmt_size(size_bytes), size_bytes, "yes",
                            f"{found.path} ({how})", source)
    return CatalogEntry(tinyshakespeare.NAME, ("lm",), good_for, size, None, "if online",
                        f"downloaded on first use into {tinyshakespeare.cached_path()}; offline, "
                        f"{tinyshakespeare.how_to_get()}", source)


def _python_stdlib_entry() -> CatalogEntry:
    good_for = ("language models: Python source code (the running Python's standard library), the "
                "'generate source code' demo; indentation, def/class and docstrings")
    root = python_stdlib.stdlib_dir()
    source = f"{root} (Python {sys.version.split()[0]}, .py files in path order, capped at "\
             f"{fmt_size(python_stdlib.CAP_BYTES)})"
    hit = python_stdlib.cached()
    if hit:
        return CatalogEntry(python_stdlib.NAME, ("lm",), good_for, fmt_size(hit.n_bytes), hit.n_bytes, "yes",
                            f"{hit.path} ({hit.n_files} files)", source)
    if not root.is_dir():
        return CatalogEntry(python_stdlib.NAME, ("lm",), good_for, "-", None, "no",
                            f"this Python's standard-library sources are not at {root}", source)
    return CatalogEntry(python_stdlib.NAME, ("lm",), good_for, f"up to {fmt_size(python_stdlib.CAP_BYTES)}",
                        None, "on first use", f"built offline on first use into {python_stdlib.cached_path()}",
                        source)


def _chitchat_entry() -> CatalogEntry:
    good_for = ("chat models: 7,168 English conversations (--mode chat trains on the dialogue); "
                "language models on the same turns as plain text")
    source = "the chitchat-dataset package (BYU PCC lab, MIT licence), installed with charnn"
    if importlib.util.find_spec("chitchat_dataset") is None:
        return CatalogEntry(DEFAULT_CHAT, ("chat", "lm"), good_for, "-", None, "no",
                            "install the chitchat-dataset package (pip install chitchat-dataset)", source)
    built = _chitchat_cached_files()
    if built:
        sizes = ", ".join(f"{p.name} {fmt_size(p.stat().st_size)}" for p in built)
        first = built[0].stat().st_size
        return CatalogEntry(DEFAULT_CHAT, ("chat", "lm"), good_for, fmt_size(first), first, "yes",
                            f"{built[0].parent} ({sizes})", source)
    return CatalogEntry(DEFAULT_CHAT, ("chat", "lm"), good_for, "about 13 MB", None, "on first use",
                        f"built offline on first use (a few seconds) into {corpora_cache_dir()}", source)


def _chitchat_cached_files() -> list[Path]:
    """The chitchat files already built here (dialogue first), found without building them."""
    from charnn.corpora import chitchat

    listed = getattr(chitchat, "cached_files", None)
    if callable(listed):
        return [Path(p) for p in listed() if Path(p).is_file()]
    # charnn.corpora.chitchat names its files NAME-...-vVERSION.txt in the corpora cache
    pattern = f"{chitchat.NAME}*-v{getattr(chitchat, 'VERSION', '*')}.txt"
    return sorted(p for p in corpora_cache_dir().glob(pattern) if p.is_file() and p.stat().st_size > 0)


def catalog() -> list[CatalogEntry]:
    """Every built-in corpus, with whether it is available here; never builds or downloads."""
    return [_tinyshakespeare_entry(), _python_stdlib_entry(), _chitchat_entry()]


def print_catalog(file=None) -> None:
    out = file or sys.stdout
    entries = catalog()
    print("Built-in corpora: give a name wherever a corpus file goes, e.g. `charnn train tinyshakespeare`.\n",
          file=out)
    width = max(len(e.name) for e in entries)
    print(f"{'name':<{width}}  {'size':<12} {'modes':<8}  available here", file=out)
    for e in entries:
        print(f"{e.name:<{width}}  {e.size:<12} {','.join(e.modes):<8}  {e.available}", file=out)
        print(f"{'':<{width}}  good for: {e.good_for}", file=out)
        print(f"{'':<{width}}  here:     {e.where}", file=out)
        print(f"{'':<{width}}  source:   {e.source}", file=out)
    print(f"\n`charnn train` with no corpus uses {DEFAULT_LM} ({FALLBACK_LM} when {DEFAULT_LM} cannot be had); "
          f"`charnn train --mode chat` uses {DEFAULT_CHAT}.", file=out)


# -- resolving ------------------------------------------------------------------------


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def is_builtin(name: str) -> bool:
    """Whether ``name`` names a built-in corpus (``charnn corpora``)."""
    return _normalise(name) in NAMES


def _plain_text_only(name: str, mode: str) -> None:
    if mode == "chat":
        raise CharnnError(f"{name} is plain text, not dialogue; --mode chat needs a dialogue corpus such as "
                          f"{DEFAULT_CHAT}.")


def builtin_path(name: str, mode: str = "lm", notify: Notify | None = None) -> Path:
    """The text file for built-in corpus ``name`` in ``mode``, building or downloading it if needed."""
    say = notify or _say
    name = _normalise(name)
    if name == tinyshakespeare.NAME:
        _plain_text_only(name, mode)
        return tinyshakespeare.corpus_file(allow_download=True, notify=say)
    if name == python_stdlib.NAME:
        _plain_text_only(name, mode)
        if python_stdlib.cached() is None:
            say(f"gathering this Python's standard-library sources into {python_stdlib.cached_path()}")
        return python_stdlib.corpus_file()
    if name == DEFAULT_CHAT:
        from charnn.corpora import chitchat

        if not _chitchat_cached_files():
            say(f"building {DEFAULT_CHAT} from the chitchat-dataset package into {corpora_cache_dir()}")
        return Path(chitchat.dialogue_file() if mode == "chat" else chitchat.flat_text_file())
    raise CharnnError(_unknown(name))


def _unknown(arg: str) -> str:
    names = ", ".join(NAMES)
    return (f"Corpus not found: {arg} does not exist and is not a built-in corpus (built-in: {names}; "
            f"see `charnn corpora`).")


def default_corpus(mode: str = "lm", notify: Notify | None = None) -> Path:
    """The built-in corpus ``charnn train`` uses when given none, saying which it picked."""
    say = notify or _say
    if mode == "chat":
        path = builtin_path(DEFAULT_CHAT, "chat", say)
        say(f"no corpus given; training a chat model on built-in {DEFAULT_CHAT} ({path})")
        return path
    try:
        path = builtin_path(DEFAULT_LM, "lm", say)
    except CharnnError as e:
        say(str(e))
        path = builtin_path(FALLBACK_LM, "lm", say)
        say(f"no corpus given and {DEFAULT_LM} is not available, so training on built-in {FALLBACK_LM} "
            f"({path}) instead")
        return path
    say(f"no corpus given; training on built-in {DEFAULT_LM} ({path})")
    return path


def resolve_corpus(arg: str | None, mode: str = "lm", notify: Notify | None = None) -> Path:
    """A corpus argument as a text file: an existing path wins, then a built-in name; None means the default."""
    if arg is None or not arg.strip():
        return default_corpus(mode, notify)
    path = Path(arg).expanduser()
    if path.exists():
        return path
    if is_builtin(arg):
        found = builtin_path(arg, mode, notify)
        (notify or _say)(f"using built-in corpus {_normalise(arg)} ({found})")
        return found
    raise CharnnError(_unknown(arg))
