"""Finding the text a model wants to replace, forgiving only what is safe to forgive.

Models copy code with the wrong indentation or stray spaces far more often than they
invent it, so after an exact match fails, lines are compared with whitespace
normalised and the replacement is re-indented to fit. Anything else fails with the
closest lines of the file quoted, so the next attempt can copy them exactly.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass


class EditError(ValueError):
    """The edit cannot be applied; the message tells the model what to do instead."""


@dataclass(frozen=True)
class Replacement:
    """The edited text and where the change landed (1-based, inclusive, in the old text)."""

    text: str
    start_line: int
    end_line: int
    method: str  # "exact" or "whitespace"
    count: int = 1  # how many places were replaced


def apply_edit(text: str, old: str, new: str) -> Replacement:
    """Replace the one occurrence of `old` in `text` by `new`."""
    if not old.strip():
        raise EditError(
            "`old` is empty; give the exact lines to replace (use write_file for new files)"
        )
    count = text.count(old)
    if count == 1:
        start = text.index(old)
        first = text.count("\n", 0, start) + 1
        return Replacement(
            text[:start] + new + text[start + len(old) :],
            first,
            first + old.count("\n") - (1 if old.endswith("\n") else 0),
            "exact",
        )
    if count > 1:
        raise EditError(_ambiguous(count, _exact_lines(text, old)))
    return _whitespace_edit(text, old, new)


def replace_every(text: str, old: str, new: str) -> Replacement:
    """Replace every exact occurrence of `old`; the lines span the first to the last."""
    if not old.strip():
        raise EditError("`old` is empty; give the exact text to replace")
    lines = _exact_lines(text, old)
    if not lines:  # no whitespace-tolerant guess: each of many places could differ
        raise EditError(not_found_message(text, old))
    last = lines[-1] + old.count("\n") - (1 if old.endswith("\n") else 0)
    return Replacement(text.replace(old, new), lines[0], last, "exact", len(lines))


def normalise(line: str) -> str:
    """A line with leading/trailing whitespace dropped and inner runs collapsed."""
    return " ".join(line.split())


def _exact_lines(text: str, old: str) -> list[int]:
    lines, at = [], text.find(old)
    while at >= 0:
        lines.append(text.count("\n", 0, at) + 1)
        at = text.find(old, at + len(old))
    return lines


def _ambiguous(count: int, lines: list[int]) -> str:
    where = ", ".join(str(n) for n in lines[:10])
    return (
        f"`old` matches {count} places (lines {where}); include more surrounding lines "
        "in `old` so it matches exactly one place, or pass replace_all: true to change "
        "every one of them"
    )


def _old_lines(old: str) -> list[str]:
    lines = old.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    return lines


def _whitespace_edit(text: str, old: str, new: str) -> Replacement:
    lines = text.split("\n")
    wanted = [normalise(line) for line in _old_lines(old)]
    have = [normalise(line) for line in lines]
    size = len(wanted)
    starts = [i for i in range(len(lines) - size + 1) if have[i : i + size] == wanted]
    if len(starts) > 1:
        raise EditError(_ambiguous(len(starts), [i + 1 for i in starts]))
    if not starts:
        raise EditError(not_found_message(text, old))
    start = starts[0]
    offset = _indent_of(lines, start, size), _indent_of(_old_lines(old), 0, size)
    new_lines = _reindent(_old_lines(new) if new.strip() else [], *offset)
    edited = lines[:start] + new_lines + lines[start + size :]
    return Replacement("\n".join(edited), start + 1, start + size, "whitespace")


def _indent_of(lines: list[str], start: int, size: int) -> str:
    for line in lines[start : start + size]:
        if line.strip():
            return line[: len(line) - len(line.lstrip())]
    return ""


def _reindent(lines: list[str], have: str, given: str) -> list[str]:
    """Shift `lines` from the indentation the model used (`given`) to the file's (`have`)."""
    if have == given:
        return lines
    out = []
    for line in lines:
        if not line.strip():
            out.append(line.strip(" \t"))
        elif have.endswith(given):
            out.append(have[: len(have) - len(given)] + line)
        elif given.endswith(have):
            drop = len(given) - len(have)
            body = line.lstrip(" \t")
            out.append(line[: len(line) - len(body)][drop:] + body)
        elif line.startswith(given):
            out.append(have + line[len(given) :])
        else:
            out.append(line)
    return out


def not_found_message(text: str, old: str, context: int = 2) -> str:
    """Why `old` was not found, quoting the most similar lines of `text` with numbers."""
    lines = text.split("\n")
    wanted = _old_lines(old)
    start = closest_start(lines, wanted)
    head = "`old` was not found, not even ignoring whitespace differences."
    if start is None:
        return f"{head} No similar lines exist; use read_file to see the file's current content."
    first = max(start - context, 0)
    last = min(start + max(len(wanted), 1) + context, len(lines))
    last = min(last, first + 40)
    quoted = "\n".join(f"{n + 1:>6}| {lines[n]}" for n in range(first, last))
    return (
        f"{head} The closest lines in the file are:\n{quoted}\n"
        "Copy the exact text from the file into `old` (without the line numbers)."
    )


def closest_start(lines: list[str], wanted: list[str]) -> int | None:
    """Index of the window of `lines` most like `wanted`, or None if nothing is alike."""
    size = max(len(wanted), 1)
    wanted_set = {normalise(w) for w in wanted if w.strip()}
    have = [normalise(line) for line in lines]
    prefix = [0]
    for line in have:
        prefix.append(prefix[-1] + (1 if line and line in wanted_set else 0))
    starts = range(max(len(lines) - size + 1, 1))
    scores = [prefix[min(i + size, len(lines))] - prefix[i] for i in starts]
    top = max(scores, default=0)
    if top == 0:
        return _closest_by_similarity(lines, wanted)
    # Among equally good windows, prefer the one whose lines line up with `wanted`.
    norm = [normalise(w) for w in wanted]
    return max(
        (i for i in starts if scores[i] == top),
        key=lambda i: sum(a == b for a, b in zip(have[i : i + size], norm, strict=False)),
    )


def _closest_by_similarity(lines: list[str], wanted: list[str]) -> int | None:
    """Fall back to fuzzy matching of single lines when no line matches outright."""
    index: dict[str, int] = {}
    for n, line in enumerate(lines):
        if line.strip():
            index.setdefault(normalise(line), n)
    candidates = list(index)
    best, best_ratio = None, 0.0
    for offset, line in enumerate(wanted[:5]):
        if not line.strip():
            continue
        target = normalise(line)
        for match in difflib.get_close_matches(target, candidates, n=1, cutoff=0.5):
            ratio = difflib.SequenceMatcher(None, target, match).ratio()
            if ratio > best_ratio:
                best, best_ratio = max(index[match] - offset, 0), ratio
    return best
