"""The layers of ARCHITECTURE.md: each imports only the layers below it, with no import circles,
and the engine knows nothing about how it is shown (DESIGN.md's one rule)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UI = {"textual", "rich"}

# From the ground up. A module may import its own layer and those below it, never one above.
LAYERS: list[tuple[str, set[str]]] = [
    ("foundations", {"charnn", "charnn.errors", "charnn.paths", "charnn.fileio", "charnn.config",
                     "charnn.presets"}),
    ("text", {"charnn.text"}),
    ("corpora", {"corpora", "charnn.corpora"}),
    ("models", {"charnn.models"}),
    ("runtime", {"charnn.runtime"}),
    ("decoding and scoring", {"charnn.decoding", "charnn.scoring"}),
    ("training", {"charnn.training"}),
    ("inspect", {"charnn.inspect"}),
    ("chat and reporting", {"charnn.chat", "charnn.report"}),
    ("front doors", {"charnn.cli", "charnn.commands", "charnn.tui", "charnn.__main__"}),
]
# The core: nothing here may import a UI library.
CORE_LAYERS = {"foundations", "text", "corpora", "models", "runtime", "decoding and scoring", "training",
               "inspect"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer_of(module: str) -> int | None:
    """Index of the layer owning ``module``: the longest matching prefix wins."""
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = i, len(prefix)
    return best


def _sources() -> list[Path]:
    return sorted((REPO / "charnn").rglob("*.py")) + sorted((REPO / "corpora").rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function (both are dependencies)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else _module_name(path)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
    return names


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in _sources()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {m for m in _imports(path) if m in modules and m != name}
    return graph


def test_every_module_belongs_to_a_layer():
    missing = [m for m in _graph() if _layer_of(m) is None]
    assert not missing, f"modules with no layer in ARCHITECTURE.md / this test: {missing}"


def _climbs(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, deps in graph.items():
        here = _layer_of(module)
        for dep in deps:
            there = _layer_of(dep)
            if here is not None and there is not None and there > here:
                found.append(f"{module} ({LAYERS[here][0]}) imports {dep} ({LAYERS[there][0]})")
    return sorted(found)


def test_no_module_imports_a_layer_above_its_own():
    climbs = _climbs(_graph())
    assert not climbs, "imports that climb a layer:\n" + "\n".join(climbs)


def test_a_climb_is_reported():
    """The checker itself: a text module that imported the trainer would fail the test above."""
    assert _climbs({"charnn.text.corpus": {"charnn.training.trainer"}, "charnn.training.trainer": set()})
    assert not _climbs({"charnn.training.trainer": {"charnn.text.corpus"}, "charnn.text.corpus": set()})


def test_no_import_circles():
    graph = _graph()
    # Tarjan's strongly connected components; any component of two or more modules is a circle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    # a package's __init__ re-exporting its own modules is not a circle between layers
    circles = [c for c in circles if not all(m.startswith(c[0] + ".") or m == c[0] for m in c)]
    assert not circles, f"import circles: {circles}"


@pytest.mark.parametrize("path", [p for p in _sources()
                                  if LAYERS[_layer_of(_module_name(p)) or 0][0] in CORE_LAYERS],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_core_module_never_imports_ui_libraries(path):
    top = {m.split(".")[0] for m in _imports(path)}
    assert not (top & UI), f"{path} imports a UI library"
