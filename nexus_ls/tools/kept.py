"""Observations kept whole, so a cut one can be read on.

A failing test suite's middle is its tracebacks: cutting it for the model's view must
not lose it. Each observation is kept under its step (and call, when a step made
several) and `read_output` pages through it; the view says which lines were cut and how
to read them. Memory is bounded: the oldest are dropped first, and a dropped one says so.
"""

from __future__ import annotations

from collections import OrderedDict

KEEP_TOTAL = 64 << 20  # characters kept across a run
KEEP_ONE = 8 << 20  # characters kept of one observation


def where(step: int, call: int) -> str:
    """How a model names an observation in `read_output`."""
    return f'{{"step": {step}}}' if call == 1 else f'{{"step": {step}, "call": {call}}}'


class Outputs:
    """Whole observations by (step, call), oldest dropped once `limit` characters are held."""

    def __init__(self, limit: int = KEEP_TOTAL) -> None:
        self.limit = limit
        self._kept: OrderedDict[tuple[int, int], str] = OrderedDict()
        self._size = 0

    def keep(self, step: int, call: int, text: str) -> None:
        text = text[:KEEP_ONE]
        old = self._kept.pop((step, call), None)
        self._size -= len(old or "")
        self._kept[(step, call)] = text
        self._size += len(text)
        while self._size > self.limit and len(self._kept) > 1:
            _, dropped = self._kept.popitem(last=False)
            self._size -= len(dropped)

    def get(self, step: int, call: int = 1) -> str | None:
        return self._kept.get((step, call))

    def steps(self) -> list[tuple[int, int]]:
        return list(self._kept)


def view(text: str, limit: int, step: int, call: int = 1) -> str:
    """`text` if it fits in `limit` characters, else its first and last lines around a note
    naming the cut lines and the `read_output` call that shows them."""
    if len(text) <= limit:
        return text
    lines = text.split("\n")
    room = max(limit - 200, 80)
    head: list[str] = []
    used = 0
    for line in lines:  # the start says what ran
        if used + len(line) + 1 > room // 2:
            break
        head.append(line)
        used += len(line) + 1
    tail: list[str] = []
    for line in reversed(lines[len(head) :]):  # the end says how it ended
        if used + len(line) + 1 > room:
            break
        tail.insert(0, line)
        used += len(line) + 1
    first, last = len(head) + 1, len(lines) - len(tail)
    if first > last:  # one line longer than the view: cut inside it
        return _cut_inside(text, room, step, call)
    chars = sum(len(line) + 1 for line in lines[first - 1 : last])
    note = (
        f"[... lines {first:,}-{last:,} of {len(lines):,} cut ({chars:,} characters); "
        f'read them with read_output {where(step, call)[:-1]}, "start_line": {first}}}]'
    )
    return "\n".join([*head, note, *tail])


def _cut_inside(text: str, room: int, step: int, call: int) -> str:
    half = room // 2
    cut = len(text) - 2 * half
    note = (
        f"\n[... {cut:,} characters cut from very long lines; read them with read_output "
        f"{where(step, call)}]\n"
    )
    return text[:half] + note + text[-half:]
