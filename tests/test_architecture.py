"""The engine knows nothing about how it is shown (DESIGN.md's one rule)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "charnn"
CORE = ["text", "models", "training", "sampling.py", "config.py", "paths.py", "errors.py", "evaluate.py"]
UI = {"textual", "rich"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _core_files():
    for entry in CORE:
        p = ROOT / entry
        yield from (sorted(p.rglob("*.py")) if p.is_dir() else [p])


@pytest.mark.parametrize("path", list(_core_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_never_imports_ui_libraries(path):
    assert not (_imports(path) & UI), f"{path} imports a UI library"
