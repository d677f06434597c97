"""The SQLite index beside the journal: rebuilt whenever it cannot be trusted, never in the way
of an append, and answering exactly what reading the whole file would."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tracemalloc
from contextlib import closing
from pathlib import Path

import pytest

from nexus_ls.journal import Journal, Redactor
from nexus_ls.journal.index import JournalIndex, index_path

REPO = Path(__file__).resolve().parents[1]


def child_env() -> dict[str, str]:
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


def write_events(path: Path, count: int, start: int = 0, run: str = "r1") -> None:
    """Events written as lines, the way a writer leaves them."""
    with path.open("a", encoding="utf-8") as handle:
        for i in range(start, start + count):
            event = {
                "id": f"{i:013d}-0000000000",
                "ts": f"2024-05-01T10:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
                "level": "WARNING" if i % 10 == 0 else "INFO",
                "category": "tool" if i % 2 else "command",
                "run": f"{run}-{i // 100}",
                "agent": None,
                "step": i,
                "message": f"event {i}",
                "data": {"path": f"src/mod{i}.py", "word": "needle" if i % 50 == 7 else "hay"},
            }
            handle.write(json.dumps(event) + "\n")


def by_scan(path: Path, keep: object) -> list[int]:
    """The steps of the events a whole-file scan finds: what every search must agree with."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [event["step"] for event in map(json.loads, lines) if keep(event)]  # type: ignore[operator]


def checkpoint(index: Path) -> None:
    """Move everything from the write-ahead log into the index file, so damage to it counts."""
    with closing(sqlite3.connect(index)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def steps(events: list[dict]) -> list[int]:
    return [event["step"] for event in events]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "journal.jsonl"
    write_events(path, 500)
    return path


def journal_at(path: Path) -> Journal:
    return Journal(path, Redactor({}))


def searches(journal: Journal) -> list[list[int]]:
    """One of each kind of search, in a fixed order, to compare before and after."""
    return [
        steps(journal.query()),
        steps(journal.query(grep="NEEDLE")),
        steps(journal.query(run="r1-3")),
        steps(journal.query(level="warning", category="command")),
        steps(journal.query(limit=5)),
        steps(journal.query(grep="needle", limit=3)),
    ]


def test_searches_agree_with_a_scan_of_the_file(path: Path) -> None:
    journal = journal_at(path)
    assert steps(journal.query()) == list(range(500))
    assert steps(journal.query(grep="NEEDLE")) == by_scan(
        path, lambda e: e["data"]["word"] == "needle"
    )
    assert steps(journal.query(run="r1-3")) == list(range(300, 400))
    assert steps(journal.query(level="WARNING")) == list(range(0, 500, 10))
    assert steps(journal.query(grep="needle", limit=3)) == [357, 407, 457]
    assert index_path(path).is_file()


def test_a_deleted_index_is_built_again(path: Path) -> None:
    before = searches(journal_at(path))
    index_path(path).unlink()
    assert searches(journal_at(path)) == before
    assert index_path(path).is_file()


@pytest.mark.parametrize(
    "damage",
    [
        lambda index: index.write_bytes(b"this is not a database" * 100),
        lambda index: index.write_bytes(index.read_bytes()[: 4096 * 3]),  # cut off mid-way
        lambda index: index.write_bytes(b""),
    ],
    ids=["garbage", "truncated", "empty"],
)
def test_a_damaged_index_is_built_again(path: Path, damage: object) -> None:
    before = searches(journal_at(path))
    checkpoint(index_path(path))
    damage(index_path(path))  # type: ignore[operator]
    assert searches(journal_at(path)) == before


def test_damaged_pages_inside_the_index_are_built_again(path: Path) -> None:
    before = searches(journal_at(path))
    checkpoint(index_path(path))
    data = bytearray(index_path(path).read_bytes())
    for page in range(2, len(data) // 4096):  # every page but the header's
        data[page * 4096 : page * 4096 + 64] = b"\xff" * 64
    index_path(path).write_bytes(bytes(data))
    assert searches(journal_at(path)) == before


def test_an_index_of_another_schema_is_replaced(path: Path) -> None:
    before = searches(journal_at(path))
    with closing(sqlite3.connect(index_path(path))) as db:
        db.execute("UPDATE meta SET value = 999 WHERE key = 'schema'")
        db.commit()
    assert searches(journal_at(path)) == before


def test_a_journal_replaced_by_another_file_is_indexed_afresh(path: Path) -> None:
    journal = journal_at(path)
    assert len(journal.query()) == 500
    other = path.with_name("other.jsonl")
    write_events(other, 20, start=1000)
    os.replace(other, path)
    assert steps(journal.query()) == list(range(1000, 1020))


def test_a_journal_rewritten_in_place_is_indexed_afresh(path: Path) -> None:
    journal = journal_at(path)
    assert len(journal.query()) == 500
    size = path.stat().st_size
    with path.open("r+", encoding="utf-8") as handle:  # same inode, longer, other content
        handle.truncate(0)
    write_events(path, 600, start=2000)
    assert path.stat().st_size > size
    assert steps(journal.query()) == list(range(2000, 2600))


def test_a_truncated_journal_is_indexed_afresh(path: Path) -> None:
    journal = journal_at(path)
    assert len(journal.query()) == 500
    path.write_text("")
    assert journal.query() == []
    journal.log("INFO", "run", "after", step=1)
    assert steps(journal.query()) == [1]


def test_a_removed_journal_has_no_events(path: Path) -> None:
    journal = journal_at(path)
    assert len(journal.query()) == 500
    path.unlink()
    assert journal.query() == []


def test_the_index_reads_only_what_was_appended(path: Path) -> None:
    with JournalIndex(path) as index:
        assert index.refresh() == 500
        assert index.refresh() == 0
        write_events(path, 3, start=500)
        assert index.refresh() == 3
    with JournalIndex(path) as index:  # another reader, later: the stored offset holds
        assert index.refresh() == 0
        assert index.last_line == 503


def test_events_appended_by_another_process_are_found(path: Path) -> None:
    journal = journal_at(path)
    assert len(journal.query()) == 500
    script = (
        "import sys; from pathlib import Path; from nexus_ls.journal import Journal, Redactor;"
        "Journal(Path(sys.argv[1]), Redactor({})).log('INFO', 'tool', 'from the child', step=9)"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], env=child_env(), check=True)
    assert [e["message"] for e in journal.query(grep="child")] == ["from the child"]


def test_appends_and_searches_work_where_no_index_can_be_written(path: Path) -> None:
    index_path(path).mkdir()  # something that is not a database and cannot become one
    journal = journal_at(path)
    journal.log("INFO", "tool", "appended anyway", step=600)
    assert steps(journal.query(grep="appended anyway")) == [600]
    assert len(journal.query()) == 501
    assert index_path(path).is_dir()


def test_many_processes_building_one_index_at_once_agree(path: Path) -> None:
    write_events(path, 4500, start=500)
    script = (
        "import sys; from pathlib import Path; from nexus_ls.journal import Journal, Redactor;"
        "j = Journal(Path(sys.argv[1]), Redactor({}));"
        "print(len(j.query()), len(j.query(grep='needle')), len(j.query(run='r1-7')))"
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(path)],
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [child.communicate(timeout=120) for child in children]
    expected = f"5000 {len(by_scan(path, lambda e: e['data']['word'] == 'needle'))} 100"
    assert [out.strip() for out, _ in outputs] == [expected] * 4, [err for _, err in outputs]
    with JournalIndex(path) as index:
        assert index.last_line == 5000
        assert index.db.execute("SELECT count(*) FROM events").fetchone() == (5000,)


@pytest.mark.parametrize(
    "needle",
    ["ä", "x", '"quoted"', "src/mod1", "AND", "NEAR(", "*", "ünïcödé", "ÄPFEL", "{", "\\"],
)
def test_grep_finds_what_a_scan_finds_for_any_needle(tmp_path: Path, needle: str) -> None:
    journal = journal_at(tmp_path / "journal.jsonl")
    texts = ['say "quoted" words', "Äpfel und Birnen", "ünïcödé ok", "AND NEAR( *", "back\\slash"]
    for n, text in enumerate(texts):
        journal.log("INFO", "tool", text, step=n, data={"path": f"src/mod{n}.py"})
    journal.log("INFO", "tool", "x marks", step=9, data={"nested": {"k": "{"}})
    found = [e["step"] for e in journal.query(grep=needle)]
    lowered = needle.lower()
    expected = [
        e["step"]
        for e in map(json.loads, journal.path.read_text(encoding="utf-8").splitlines())
        if lowered in e["message"].lower()
        or lowered in json.dumps(e["data"], ensure_ascii=False).lower()
    ]
    assert found == expected


def test_grep_does_not_match_across_the_message_and_data(tmp_path: Path) -> None:
    journal = journal_at(tmp_path / "journal.jsonl")
    journal.log("INFO", "tool", "ends with abc", data={"k": "def"})
    assert journal.query(grep="abc\n{") == []
    assert journal.query(grep='abc {"k"') == []
    assert len(journal.query(grep='{"k": "def"}')) == 1


def test_a_long_lived_journal_holds_no_events_between_searches(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    write_events(path, 20_000)
    journal = journal_at(path)
    assert len(journal.query()) == 20_000  # builds the index
    tracemalloc.start()
    try:
        assert len(journal.query()) == 20_000
        held, whole_list = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        assert sum(1 for _event in journal.events()) == 20_000  # streamed: one at a time
        _, streamed = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert whole_list > 8 * 1024 * 1024  # 20,000 events in a list, while it lived
    assert held < 256 * 1024  # and nothing of them once it was dropped
    assert streamed < 1024 * 1024


def test_catch_up_indexes_new_lines_but_never_builds_a_whole_index(path: Path) -> None:
    journal = journal_at(path)
    journal.catch_up()
    assert not index_path(path).exists()  # building it whole is a search's job
    assert len(journal.query()) == 500
    write_events(path, 7, start=500)
    journal.catch_up()
    with JournalIndex(path) as index:
        assert index.last_line == 507
        assert index.refresh() == 0


def test_odd_characters_anywhere_are_searched_like_any_other(tmp_path: Path) -> None:
    journal = journal_at(tmp_path / "journal.jsonl")
    journal.log("INFO", "command", "out: a\x00bcdef", run="run-\udcff", data={"o": "x\x00yz"})
    journal.log("INFO", "command", "plain", run="run-2", ts="2024-01-01T00:00:00.000Z")
    assert [e["message"] for e in journal.query(grep="bcdef")] == ["out: a\x00bcdef"]
    assert len(journal.query(grep="a\x00bc")) == 1  # data holds it as \\u0000: no match there
    assert journal.query(grep="x\x00yz") == []
    assert len(journal.query(run="run-\udcff")) == 1
    assert [e["message"] for e in journal.query(run="run-")] == ["plain", "out: a\x00bcdef"]
    assert journal.query(run="\udcff") == []


def test_a_journal_replaced_while_a_search_reads_it_is_searched_again(path: Path) -> None:
    journal = journal_at(path)
    assert len(journal.query()) == 500
    other = path.with_name("other.jsonl")
    write_events(other, 500, start=5000, run="zz")  # the same layout, other events
    stream = journal.events(run="r1")
    os.replace(other, path)  # after the generator was made, before it reads
    assert list(stream) == []
    assert steps(journal.query(run="zz")) == list(range(5000, 5500))


def test_the_newest_matches_are_the_same_whichever_way_they_are_found(path: Path) -> None:
    # Small limits are found by reading the newest lines, larger ones through the trigrams.
    journal = journal_at(path)
    every = by_scan(path, lambda e: e["data"]["word"] == "needle")
    for limit in range(1, len(every) + 3):
        assert steps(journal.query(grep="needle", limit=limit)) == every[-limit:]
        assert steps(journal.query(grep="needle", level="info", limit=limit)) == every[-limit:]


def test_the_newest_by_time_are_found_even_far_back_in_the_file(tmp_path: Path) -> None:
    journal = journal_at(tmp_path / "journal.jsonl")
    journal.log("INFO", "tool", "needle, written late", step=1, ts="2030-01-01T00:00:00.000Z")
    for n in range(2, 3000):
        journal.log("INFO", "tool", "needle" if n % 7 == 0 else "hay", step=n,
                    ts=f"2024-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}.000Z")  # fmt: skip
    assert steps(journal.query(grep="needle", limit=1)) == [1]
    assert steps(journal.query(grep="needle", limit=2)) == [2996, 1]
