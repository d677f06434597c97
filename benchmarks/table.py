"""Plain-text tables for benchmark scripts, so every script prints results the same way."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO


def print_table(rows: Sequence[Sequence[object]], file: TextIO | None = None) -> None:
    """Print rows as aligned columns; the first row is the header.

    Numbers are right-aligned (floats with 4 decimals), everything else left-aligned.
    """
    if not rows:
        return
    cells = [[_text(value) for value in row] for row in rows]
    width = max(len(row) for row in cells)
    sizes = [max(len(row[i]) for row in cells if i < len(row)) for i in range(width)]
    out = file or sys.stdout
    for n, (row, raw) in enumerate(zip(cells, rows, strict=True)):
        parts = []
        for i, text in enumerate(row):
            numeric = isinstance(raw[i], (int, float)) and not isinstance(raw[i], bool)
            parts.append(text.rjust(sizes[i]) if numeric else text.ljust(sizes[i]))
        print("  ".join(parts).rstrip(), file=out)
        if n == 0:
            print("  ".join("-" * size for size in sizes), file=out)


def _text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)
