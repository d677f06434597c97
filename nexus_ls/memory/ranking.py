"""Which lessons fit a task or a question: BM25 text relevance times the lesson's strength.

One ranking serves both the lessons a run starts with and `recall`, so what a model finds
by asking is what it would have been given. Words are lower-cased, split at anything not a
letter or digit (`test_calc.py` is `test`, `calc`, `py`) and lightly stemmed (`tests`,
`failing` and `failed` match `test` and `fail`), which is what lets "fix the failing test"
find "Tests run with `python -m pytest -q`". Tokens are estimated as characters / 4, as
the starting context does.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from .lessons import FLOOR, Lesson

K1, B = 1.2, 0.75  # the usual BM25 constants
WORD = re.compile(r"[a-z0-9]+")
_STOP = """a an and are as at be by do does for from has have how i in into is it its me my no
not of on or so that the their then there these this to was we were what when where which who
why will with you your"""
STOP = frozenset(_STOP.split())
SUFFIXES = ("ing", "ed", "es", "s")
# Lessons about the workspace as a whole: a run gets them even when its task shares no
# word with them (after those that do), since every task runs commands and tests.
WORKSPACE_KINDS = frozenset({"test-command", "environment", "convention"})


def stem(word: str) -> str:
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def words(text: str) -> list[str]:
    """The terms of `text` for matching: lower case, no stop words, stemmed."""
    return [stem(w) for w in WORD.findall(text.lower()) if w not in STOP]


def lesson_terms(lesson: Lesson) -> list[str]:
    return words(" ".join([lesson.text, *lesson.tags]))


class Index:
    """Term postings of a list of lessons; scores a query against all of them in the time
    its terms' postings take, not the number of lessons."""

    def __init__(self, lessons: Sequence[Lesson], known: Index | None = None) -> None:
        """`known`: an earlier index, whose lessons' terms are reused where the text and
        tags are the same (adding one lesson does not tokenise all the others again)."""
        self.ids = [lesson.id for lesson in lessons]
        self.postings: dict[str, list[tuple[int, int]]] = {}
        self.lengths: list[int] = []
        self.terms: dict[tuple[str, tuple[str, ...]], Counter[str]] = {}
        earlier = known.terms if known is not None else {}
        for n, lesson in enumerate(lessons):
            said = (lesson.text, tuple(lesson.tags))
            counts = earlier.get(said) or Counter(lesson_terms(lesson))
            self.terms[said] = counts
            self.lengths.append(sum(counts.values()))
            for term, tf in counts.items():
                self.postings.setdefault(term, []).append((n, tf))
        self.average = (sum(self.lengths) / len(self.lengths)) if self.lengths else 0.0

    def scores(self, query: str) -> dict[int, float]:
        """Position of the lesson in the indexed list -> BM25 score, for lessons sharing a
        term with `query`."""
        total = len(self.ids)
        found: dict[int, float] = {}
        for term in set(words(query)):
            posting = self.postings.get(term)
            if not posting:
                continue
            idf = math.log(1 + (total - len(posting) + 0.5) / (len(posting) + 0.5))
            for n, tf in posting:
                norm = 1 - B + B * self.lengths[n] / (self.average or 1)
                found[n] = found.get(n, 0.0) + idf * tf * (K1 + 1) / (tf + K1 * norm)
        return found


@dataclass
class Ranked:
    lesson: Lesson
    score: float  # relevance x strength (0 for a workspace lesson that matched no word)
    strength: float


def rank(
    lessons: Sequence[Lesson],
    index: Index,
    query: str,
    *,
    now: datetime | None = None,
    fill: bool = False,
) -> list[Ranked]:
    """The lessons still offered that match `query`, best first; with `fill`, then the
    workspace-wide ones that matched no word, strongest first. `index` is of `lessons`."""
    if [lesson.id for lesson in lessons] != index.ids:
        index = Index(lessons)  # not the index of these lessons: one that is
    moment = now or datetime.now(timezone.utc)
    relevance = index.scores(query)
    matched: list[Ranked] = []
    for n, score in relevance.items():
        strength = lessons[n].strength(moment)
        if strength >= FLOOR:
            matched.append(Ranked(lessons[n], score * strength, strength))
    rest: list[Ranked] = []
    if fill:
        for n, lesson in enumerate(lessons):
            if lesson.kind in WORKSPACE_KINDS and n not in relevance:
                strength = lesson.strength(moment)
                if strength >= FLOOR:
                    rest.append(Ranked(lesson, 0.0, strength))
    matched.sort(key=lambda r: (-r.score, -r.strength, r.lesson.id))
    rest.sort(key=lambda r: (-r.strength, r.lesson.id))
    return matched + rest


def tokens(text: str) -> int:
    return (len(text) + 3) // 4


def within(ranked: Iterable[Ranked], budget: int, limit: int | None = None) -> list[Ranked]:
    """The best that fit in `budget` tokens (one line each), at most `limit` of them; one
    that does not fit is passed over for a shorter one after it."""
    chosen: list[Ranked] = []
    used = 0
    for item in ranked:
        if limit is not None and len(chosen) >= limit:
            break
        cost = tokens(f"- {item.lesson.line()}\n")
        if used + cost <= budget:
            chosen.append(item)
            used += cost
    return chosen
