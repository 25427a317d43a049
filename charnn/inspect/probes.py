"""Probes: signals computed from the text itself, one value per character, that a unit may track
(Karpathy, Johnson & Fei-Fei 2015 found cells for line position, quotes and bracket depth)."""

from __future__ import annotations

import numpy as np

PROBES = ("line_position", "inside_quotes", "bracket_depth", "indentation", "word_start",
          "capital_line", "python_string", "python_comment")


def probe_signals(text: str) -> dict[str, np.ndarray]:
    """Every probe for ``text``: ``{name: (len(text),) float32}``; the state after reading each character."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    n = len(codes)
    newline = codes == 10
    line = np.cumsum(newline) - newline  # the line each character belongs to (a newline ends its line)
    line_start = np.concatenate([[0], np.flatnonzero(newline) + 1])
    column = np.arange(n) - line_start[line]
    quote = codes == ord('"')
    depth = np.cumsum(np.isin(codes, [40, 91, 123]).astype(np.int64) - np.isin(codes, [41, 93, 125]))
    depth = depth - np.minimum(np.minimum.accumulate(depth), 0)  # a stray closer resets the floor to 0
    blank = (codes == 32) | (codes == 9)
    ink = np.cumsum(~blank & ~newline)
    ink_before_line = (ink - (~blank & ~newline))[line_start[line]]
    leading = blank & (ink == ink_before_line)
    n_lines = len(line_start)
    indent = np.bincount(line, weights=leading, minlength=n_lines)
    alnum = np.fromiter((c.isalnum() for c in text), dtype=bool, count=n)
    alpha = np.fromiter((c.isalpha() for c in text), dtype=bool, count=n)
    upper = np.fromiter((c.isupper() for c in text), dtype=bool, count=n)
    n_alpha = np.bincount(line, weights=alpha, minlength=n_lines)
    n_upper = np.bincount(line, weights=upper, minlength=n_lines)
    capital = (n_alpha >= 2) & (n_upper == n_alpha)
    string, comment = python_regions(text)
    out = {
        "line_position": column,
        "inside_quotes": np.cumsum(quote) % 2 == 1,
        "bracket_depth": depth,
        "indentation": indent[line],
        "word_start": alnum & ~np.concatenate([[False], alnum[:-1]]),
        "capital_line": capital[line],
        "python_string": string,
        "python_comment": comment,
    }
    return {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}


def python_regions(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Characters inside a Python string literal and inside a comment (a scanner that, unlike
    ``tokenize``, keeps going through text that is not valid Python)."""
    n = len(text)
    string = np.zeros(n, dtype=bool)
    comment = np.zeros(n, dtype=bool)
    i = 0
    while i < n:
        ch = text[i]
        if ch == "#":
            end = text.find("\n", i)
            end = n if end < 0 else end
            comment[i:end] = True
            i = end
        elif ch in "'\"":
            quote = text[i : i + 3] if text[i : i + 3] in ('"""', "'''") else ch
            end = _string_end(text, i + len(quote), quote)
            string[i:end] = True
            i = end
        else:
            i += 1
    return string, comment


def _string_end(text: str, i: int, quote: str) -> int:
    """Index just past the string that opened before ``i`` (a one-line string ends at its line)."""
    n = len(text)
    while i < n:
        if text[i] == "\\":
            i += 2
            continue
        if text.startswith(quote, i):
            return i + len(quote)
        if text[i] == "\n" and len(quote) == 1:
            return i
        i += 1
    return n
