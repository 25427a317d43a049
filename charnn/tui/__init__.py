"""The Textual TUI (``charnn tui``, ``charnn train CORPUS --tui``).

Only this package and ``charnn/report.py`` import textual or rich; the core
(text, models, training, sampling) knows nothing about how it is shown.
"""

from __future__ import annotations


def run_tui(run: str | None = None, train_args: list[str] | None = None) -> int:
    """Open the app; ``run`` re-attaches to a run on disk, ``train_args`` starts one at once."""
    from charnn.tui.app import CharnnApp
    from charnn.tui.training_process import TrainingProcess

    attach = TrainingProcess.attach(run) if run else None  # CharnnError (bad name) reaches the CLI
    app = CharnnApp(train_args=train_args, attach_run=run, attach_process=attach)
    app.run()
    if app.farewell:
        import sys

        print(app.farewell, file=sys.stderr)
    return app.return_code or 0
