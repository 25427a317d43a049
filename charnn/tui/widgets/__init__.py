"""Widgets drawn for charnn: loss chart, sample log, run numbers, streaming text, screen tabs."""
