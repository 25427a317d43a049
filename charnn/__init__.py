"""charnn: train recurrent language models on your own text, from the terminal."""

import os as _os

# OpenMP worker threads wait for the next parallel region by spinning, then sleeping. An
# LSTM runs thousands of tiny parallel regions per second, so a short spin pays and a long
# one collapses when anything else wants the cores. 1x256 training at 2 threads on a 2-core
# machine (benchmarks/README.md): quiet, 68k tok/s at 3000 spins vs 70k at libgomp's default
# and 40k with OMP_WAIT_POLICY=PASSIVE; with two busy processes beside it, 25k vs under 2k
# (default) and 36k (PASSIVE). Must be set before torch loads; the user's own setting wins.
if "OMP_WAIT_POLICY" not in _os.environ:
    _os.environ.setdefault("GOMP_SPINCOUNT", "3000")

__version__ = "0.1.0"  # the one version: pyproject.toml reads it from here

# A wheel carries corpora/ inside the package; a source checkout keeps it beside charnn/.
_ROOT = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if not _os.path.isdir(_os.path.join(__path__[0], "corpora")) and _os.path.isfile(
        _os.path.join(_ROOT, "corpora", "__init__.py")):
    import sys as _sys
    from importlib.machinery import PathFinder as _PathFinder

    class _SourceCorporaFinder:
        """Finds ``charnn.corpora`` in the checkout's top-level ``corpora/``."""

        @staticmethod
        def find_spec(name, path=None, target=None):
            return _PathFinder.find_spec(name, [_ROOT]) if name == "charnn.corpora" else None

    _sys.meta_path.insert(0, _SourceCorporaFinder)
