"""What a regular install gets: the sdist and the wheel built from it (as `python -m build` does) hold
the built-in models, install nothing at the top level but ``charnn``, and work from the wheel alone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import charnn

REPO = Path(__file__).resolve().parents[1]
SOURCES = ["README.md", "pyproject.toml", "setup.py", "charnn", "corpora", "checkpoints"]


def _build(hook: str, source: Path, out: Path) -> Path:
    """Run one PEP 517 hook of the project's backend in ``source``: offline, no build isolation."""
    out.mkdir(exist_ok=True)
    code = f"from setuptools import build_meta; print(build_meta.{hook}({str(out)!r}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=source, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return out / done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """(sdist, wheel built from that sdist), from a copy of the checkout so no build/ dir is reused."""
    pytest.importorskip("setuptools")
    tmp = tmp_path_factory.mktemp("pkg")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, src / name)
    sdist = _build("build_sdist", src, tmp / "dist")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "unpacked", filter="data")
    (unpacked,) = (tmp / "unpacked").iterdir()
    return sdist, _build("build_wheel", unpacked, tmp / "dist")


def _wheel_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        return z.namelist()


def test_the_wheel_installs_nothing_at_the_top_level_but_charnn(built):
    _, wheel = built
    tops = {name.split("/")[0] for name in _wheel_names(wheel) if ".dist-info/" not in name}
    assert tops == {"charnn"}


def test_the_sdist_and_the_wheel_carry_the_built_in_models(built):
    sdist, wheel = built
    shipped = sorted(p.name for p in (REPO / "checkpoints").iterdir())
    assert any(name.endswith(".pt") for name in shipped)
    assert {f"charnn/checkpoints/{n}" for n in shipped} <= set(_wheel_names(wheel))
    with tarfile.open(sdist) as tar:
        in_sdist = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert {f"checkpoints/{n}" for n in shipped} <= in_sdist


def test_every_module_of_the_checkout_is_in_the_wheel(built):
    """A new subpackage of charnn/ or corpora/ is packaged without anyone editing a list."""
    _, wheel = built
    names = set(_wheel_names(wheel))
    for top, inside in (("charnn", "charnn"), ("corpora", "charnn/corpora")):
        for py in (REPO / top).rglob("*.py"):
            assert f"{inside}/{py.relative_to(REPO / top).as_posix()}" in names
    assert "charnn/tui/charnn.tcss" in names


def test_the_wheel_has_one_version_and_the_charnn_command(built):
    _, wheel = built
    assert wheel.name.startswith(f"charnn-{charnn.__version__}-")
    with zipfile.ZipFile(wheel) as z:
        entry_points = z.read(f"charnn-{charnn.__version__}.dist-info/entry_points.txt").decode()
    assert "charnn = charnn.cli:main" in entry_points


def test_an_unpacked_wheel_finds_its_corpora_and_its_models_without_the_checkout(built, tmp_path):
    _, wheel = built
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    code = ("import charnn, charnn.corpora.catalog as c, charnn.paths as p; "
            "print(c.__file__); print(p.bundled_checkpoints_dir()); print(charnn.__version__)")
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    catalog_file, models, version = done.stdout.split("\n")[:3]
    assert Path(catalog_file) == site / "charnn" / "corpora" / "catalog.py"
    assert Path(models) == site / "charnn" / "checkpoints"
    assert sorted(p.name for p in Path(models).glob("*.pt")) == sorted(
        p.name for p in (REPO / "checkpoints").glob("*.pt"))
    assert version == charnn.__version__
