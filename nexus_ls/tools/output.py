"""Keeping tool output within what a model can read.

The start of an output usually says what ran and the end says how it ended (a test
summary, the last error), so both are kept and the middle is cut with a visible note.
"""

from __future__ import annotations

from typing import BinaryIO

_MARKER_ROOM = 48  # the cut note is at most this long, so the result stays within `limit`


def numbered(lines: list[str], first: int, last: int, limit: int) -> tuple[str, int]:
    """Lines `first`..`last` (1-based) numbered for citing and editing, as many as fit in
    `limit` characters, with a note on how to read on; and the last line shown."""
    budget, used, shown = limit - 200, 0, list[str]()
    for number in range(first, last + 1):
        line = f"{number:>6}\t{lines[number - 1]}"
        if shown and used + len(line) > budget:
            last = number - 1
            break
        shown.append(cap(line, budget))
        used += len(shown[-1]) + 1
    body = "\n".join(shown)
    total = len(lines)
    if last < total or first > 1:
        body += f"\n[lines {first}-{last} of {total}"
        body += f"; pass start_line={last + 1} to read on]" if last < total else "]"
    return body, last


def cut_note(count: int, unit: str = "characters") -> str:
    """The line that stands where text was removed."""
    return f"[... {count:,} {unit} cut ...]"


def cap(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else its head and tail around a cut note."""
    if len(text) <= limit:
        return text
    budget = max(limit - _MARKER_ROOM, 2)
    head, tail = _align(text[: budget // 2], text[len(text) - (budget - budget // 2) :])
    return _join(head, tail, len(text) - len(head) - len(tail), "characters")


def cap_file(stream: BinaryIO, limit: int) -> str:
    """Like `cap` for a file of any size, reading only its two ends when it is large."""
    size = stream.seek(0, 2)
    if size <= 4 * limit:
        stream.seek(0)
        return cap(stream.read().decode("utf-8", errors="replace"), limit)
    budget = max(limit - _MARKER_ROOM, 2)
    head_bytes, tail_bytes = budget // 2, budget - budget // 2
    stream.seek(0)
    head_raw = stream.read(head_bytes)
    stream.seek(size - tail_bytes)
    tail_raw = stream.read(tail_bytes)
    head, tail = _align(_decode(head_raw), _decode(tail_raw))
    cut = size - len(head.encode("utf-8", errors="replace"))
    cut -= len(tail.encode("utf-8", errors="replace"))
    return _join(head, tail, max(cut, 0), "bytes")


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _align(head: str, tail: str) -> tuple[str, str]:
    """Cut at line ends when one is near, so no half lines surround the note."""
    newline = head.rfind("\n")
    if newline >= len(head) * 3 // 4:
        head = head[: newline + 1]
    newline = tail.find("\n")
    if 0 <= newline <= len(tail) // 4:
        tail = tail[newline + 1 :]
    return head, tail


def _join(head: str, tail: str, cut: int, unit: str) -> str:
    lead = "" if head.endswith("\n") or not head else "\n"
    return f"{head}{lead}{cut_note(cut, unit)}\n{tail}"
