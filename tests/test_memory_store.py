"""The memory's TinyDB file: lessons stored, found, forgotten, journaled, and safe to share
between processes (a lock, whole-file writes)."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest
from tinydb import TinyDB

from nexus_ls.errors import NexusError
from nexus_ls.journal import Journal, Redactor
from nexus_ls.memory import WorkspaceMemory
from nexus_ls.memory.store import MemoryStore, lesson_number


def journal(state: Path) -> Journal:
    state.mkdir(parents=True, exist_ok=True)
    return Journal(state / "journal.jsonl", Redactor(environ={}))


def test_a_lesson_has_every_field_and_the_file_is_a_tinydb_document_store(tmp_path: Path) -> None:
    memory = WorkspaceMemory(tmp_path, journal(tmp_path))
    lesson, new = memory.add("  Run the linter   with `ruff check .`  ", ["lint", "ruff"])
    assert new and lesson.id == "L1"
    assert lesson.text == "Run the linter with `ruff check .`"  # one line, spaces squeezed
    assert lesson.tags == ["lint", "ruff"] and lesson.source_run is None and lesson.uses == 0
    assert lesson.weight == 1.0 and lesson.created == lesson.last_confirmed
    assert lesson.evidence == [] and lesson.kind == "added"

    stored = TinyDB(tmp_path / "memory.json").table("lessons").all()  # TinyDB reads it as is
    assert [doc["id"] for doc in stored] == ["L1"]
    assert stored[0]["text"] == lesson.text
    assert memory.get("l1") == memory.get("L1") == lesson

    again, new = memory.add("run the linter with `ruff check .`")  # the same text: confirmed
    assert not new and again.id == "L1" and len(memory.lessons()) == 1


def test_forgotten_ids_are_not_given_out_again_and_each_change_is_journaled(
    tmp_path: Path,
) -> None:
    memory = WorkspaceMemory(tmp_path, journal(tmp_path))
    first, _ = memory.add("first")
    second, _ = memory.add("second")
    assert memory.forget("L2").text == "second"
    third, _ = memory.add("third")
    assert (first.id, second.id, third.id) == ("L1", "L2", "L3")
    assert [lesson.id for lesson in memory.lessons()] == ["L1", "L3"]
    with pytest.raises(NexusError, match="there is no lesson 'L2'"):
        memory.forget("L2")
    with pytest.raises(NexusError, match="there is no lesson"):
        memory.get("nonsense")

    events = memory.journal.query(category="memory")
    assert [e["data"]["action"] for e in events] == ["added", "added", "forgot", "added"]
    assert events[2]["message"] == "forgot L2: second"
    assert events[2]["data"]["lesson"]["text"] == "second"  # the journal keeps what was lost


def test_bad_lessons_are_refused_with_what_to_do(tmp_path: Path) -> None:
    memory = WorkspaceMemory(tmp_path, journal(tmp_path))
    for text, tags, words in [
        ("   ", [], "the lesson is empty"),
        ("x" * 501, [], "keep it to 500"),
        ("fine", [""], "each tag must be a non-empty word"),
        ("fine", ["t" * 41], "longer than 40"),
        ("fine", [f"t{i}" for i in range(9)], "at most 8 tags"),
    ]:
        with pytest.raises(NexusError, match=words):
            memory.add(text, tags)
    assert memory.lessons() == []
    assert lesson_number("L12") == 12 and lesson_number("12") == 12 and lesson_number("X1") is None


def test_a_failed_transaction_changes_nothing(tmp_path: Path) -> None:
    memory = WorkspaceMemory(tmp_path, journal(tmp_path))
    memory.add("kept")
    before = (tmp_path / "memory.json").read_bytes()
    with pytest.raises(RuntimeError), memory.store.transaction() as tx:
        tx.insert({**memory.get("L1").to_json(), "text": "half done"})
        raise RuntimeError("power cut")
    assert (tmp_path / "memory.json").read_bytes() == before
    assert [lesson.text for lesson in memory.lessons()] == ["kept"]


def test_a_damaged_file_is_an_error_that_says_what_to_do_and_odd_entries_are_skipped(
    tmp_path: Path,
) -> None:
    (tmp_path / "memory.json").write_text("{not json")
    memory = WorkspaceMemory(tmp_path, journal(tmp_path))
    with pytest.raises(NexusError, match="move it away"):
        memory.lessons()

    good = memory_doc("L1", "a real lesson")
    (tmp_path / "memory.json").write_text(
        json.dumps({"lessons": {"1": good, "2": {"id": "L2", "text": 5}}})
    )
    assert [lesson.text for lesson in memory.lessons()] == ["a real lesson"]
    assert memory.store.skipped == 1
    assert memory.add("after it")[0].id == "L3"  # the odd entry's id is not reused


def memory_doc(lesson_id: str, text: str) -> dict[str, object]:
    return {
        "id": lesson_id, "text": text, "tags": [], "source_run": None, "evidence": [],
        "weight": 1.0, "uses": 0, "created": "2026-01-01T00:00:00.000Z",
        "last_confirmed": "2026-01-01T00:00:00.000Z",
    }  # fmt: skip


def add_many(state: str, worker: int, count: int) -> None:
    memory = WorkspaceMemory(Path(state), journal(Path(state)))
    for n in range(count):
        memory.add(f"lesson {n} of worker {worker}")


def test_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=add_many, args=(str(tmp_path), w, 15)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    lessons = MemoryStore(tmp_path / "memory.json").lessons()
    assert len(lessons) == 60
    assert sorted(lesson.id for lesson in lessons) == sorted(f"L{n}" for n in range(1, 61))
    assert len({lesson.text for lesson in lessons}) == 60
    assert not list(tmp_path.glob(".memory.json.tmp*"))  # every write landed whole
