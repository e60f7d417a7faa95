"""Aligned plain-text tables for the CLI's human output (``--json`` is for scripts).

A cell may span several lines (one redirect URI per line, a long scope wrapped), so a row is as tall as its
tallest cell and every column stays aligned. Columns are separated by two spaces; there are no borders to trip
over when copying a value.
"""

import textwrap
from collections.abc import Sequence

Cell = Sequence[str]

# Past this width a space-separated cell (scope) wraps onto more lines instead of widening the table.
WRAP_WIDTH = 40


def wrapped(text: str, width: int = WRAP_WIDTH) -> list[str]:
    """Lines of ``text`` wrapped at spaces (a single long word is never broken: it may be a value to copy)."""
    return textwrap.wrap(
        text, width, break_long_words=False, break_on_hyphens=False
    ) or ["-"]


def lines_or_dash(values: Sequence[str]) -> list[str]:
    """One value per line, or ``-`` for none."""
    return list(values) or ["-"]


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> list[str]:
    """Lines of an aligned table with a header row; trailing spaces are trimmed."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max([widths[i], *(len(line) for line in cell)])
    out = [_line(headers, widths)]
    for row in rows:
        height = max(len(cell) for cell in row)
        for n in range(height):
            out.append(
                _line([cell[n] if n < len(cell) else "" for cell in row], widths)
            )
    return out


def _line(values: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()
