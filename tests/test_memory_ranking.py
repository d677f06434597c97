"""Ranking: BM25 relevance times strength; fading with time; the floor; the token budget."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from nexus_ls.journal import Journal, Redactor
from nexus_ls.journal.events import format_ts
from nexus_ls.memory import FLOOR, HALF_LIFE_DAYS, Lesson, WorkspaceMemory
from nexus_ls.memory.ranking import Index, rank, tokens, within, words

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def lesson(n: int, text: str, *, weight: float = 1.0, days: float = 0, kind: str = "added",
           tags: list[str] | None = None) -> Lesson:  # fmt: skip
    when = format_ts(NOW - timedelta(days=days))
    return Lesson(f"L{n}", text, tags or [], "run-1", [], weight, 0, when, when, kind)


def test_words_are_lower_cased_split_and_lightly_stemmed() -> None:
    assert words("Fix the FAILING tests in test_calc.py") == [
        "fix",
        "fail",
        "test",
        "test",
        "calc",
        "py",
    ]
    assert words("failed passes uses") == ["fail", "pass", "use"]


def test_relevance_orders_and_weight_multiplies() -> None:
    lessons = [
        lesson(1, "The docs build with `make html` in docs/"),
        lesson(2, "Tests run with `python -m pytest -q`", kind="test-command"),
        lesson(3, "Integration tests need the fixtures", weight=2.0),
        lesson(4, "Integration tests need the database"),
    ]
    ranked = rank(lessons, Index(lessons), "why do the integration tests fail", now=NOW)
    assert [r.lesson.id for r in ranked] == ["L3", "L4", "L2"]  # no word of L1 is asked about
    assert ranked[0].score > ranked[1].score > ranked[2].score > 0
    # Equally relevant, twice the weight: twice the score.
    assert abs(ranked[0].score / ranked[0].strength - ranked[1].score / ranked[1].strength) < 1e-9


def test_lessons_fade_with_a_half_life_and_stop_being_offered_below_the_floor() -> None:
    fresh = lesson(1, "deploy with make deploy")
    month = lesson(2, "deploy with make deploy", days=HALF_LIFE_DAYS)
    old = lesson(3, "deploy with make deploy", days=3 * HALF_LIFE_DAYS)
    weak = lesson(4, "deploy with make deploy", weight=FLOOR - 0.01)
    assert fresh.strength(NOW) == 1.0
    assert abs(month.strength(NOW) - 0.5) < 1e-9
    assert old.strength(NOW) < FLOOR and not old.offered(NOW)
    lessons = [fresh, month, old, weak]
    assert [r.lesson.id for r in rank(lessons, Index(lessons), "deploy", now=NOW)] == ["L1", "L2"]


def test_fill_adds_workspace_lessons_that_match_no_word_and_recall_does_not() -> None:
    lessons = [
        lesson(1, "Tests run with `npm test`", kind="test-command"),
        lesson(2, "The user discarded the change to a.py", kind="review"),
        lesson(3, "Parsing lives in parser.py", kind="remembered"),
    ]
    index = Index(lessons)
    assert [r.lesson.id for r in rank(lessons, index, "rename parser", now=NOW)] == ["L3"]
    filled = rank(lessons, index, "rename parser", now=NOW, fill=True)
    assert [(r.lesson.id, r.score > 0) for r in filled] == [("L3", True), ("L1", False)]


def test_within_keeps_the_best_that_fit_the_budget() -> None:
    lessons = [lesson(1, "alpha " * 40), lesson(2, "alpha beta"), lesson(3, "alpha gamma")]
    ranked = rank(lessons, Index(lessons), "alpha", now=NOW)
    cost = sum(tokens(f"- {item.line()}\n") for item in lessons[1:])
    chosen = within(ranked, cost)
    assert {r.lesson.id for r in chosen} == {"L2", "L3"}  # the long one is passed over
    assert [r.lesson.id for r in within(ranked, 10_000, limit=1)] == [ranked[0].lesson.id]


def test_the_memory_ranks_its_own_lessons_and_sees_changes_from_outside(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl", Redactor(environ={}))
    memory = WorkspaceMemory(tmp_path, journal)
    memory.add("Tests run with `tox -e py311`", ["test"])
    assert [r.lesson.text for r in memory.ranked("run the tests")] == [
        "Tests run with `tox -e py311`"
    ]
    other = WorkspaceMemory(tmp_path, journal)  # another host process of the workspace
    other.add("Test data lives in fixtures/")
    other.forget("L1")
    assert [r.lesson.id for r in memory.ranked("test")] == ["L2"]  # its index was rebuilt
