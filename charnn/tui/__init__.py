"""The Textual TUI (``charnn tui``, ``charnn train CORPUS --tui``).

Only this package and ``charnn/report.py`` import textual or rich; the core
(text, models, training, sampling) knows nothing about how it is shown.
"""

from __future__ import annotations

import sys


def run_tui(run: str | None = None, train_args: list[str] | None = None) -> int:
    """Open the app; ``run`` follows a run on disk or opens a model by name, ``train_args`` starts a run."""
    from charnn.tui.app import CharnnApp

    attach, model = _what_to_open(run) if run else (None, None)
    app = CharnnApp(train_args=train_args, attach_process=attach, open_model=model)
    app.run()
    if app.farewell:
        print(app.farewell, file=sys.stderr)
    return app.return_code or 0


def _what_to_open(spec: str):
    """A run's event stream to follow, else a model (kind, checkpoint) to open: any name
    `charnn models` lists. A CharnnError (no such name) reaches the CLI."""
    from charnn.errors import CharnnError
    from charnn.runtime.runs import find_model
    from charnn.tui.training_process import TrainingProcess

    attach, match, error = None, None, None
    try:
        attach = TrainingProcess.attach(spec)
    except CharnnError as e:
        error = e
    try:
        match = find_model(spec)
    except CharnnError:
        if attach is None:
            raise error from None
    if match is not None and match.notice:
        print(f"charnn: {match.notice}", file=sys.stderr)
    if attach is not None or match is None:
        return attach, None
    return None, (_kind_of(match), str(match.path))


def _kind_of(match) -> str:
    if match.record is not None:
        return match.record.mode
    from charnn.runtime.checkpoint import load_checkpoint

    return str(load_checkpoint(match.path).get("kind", "lm"))
