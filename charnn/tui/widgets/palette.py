"""Colours for the series of a chart, one per run or model (no UI library: the CLI uses them too)."""

PALETTE = ("#e5c07b", "#61afef", "#98c379", "#e06c75", "#c678dd", "#56b6c2", "#d19a66", "#abb2bf")
