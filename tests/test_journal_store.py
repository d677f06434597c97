"""Journal: appending with validation, each query filter, `since` parsing and following."""

from __future__ import annotations

import itertools
import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from nexus_ls.journal import Journal, Redactor, parse_since
from nexus_ls.journal import index as index_module
from nexus_ls.journal.index import index_path

REPO = Path(__file__).resolve().parents[1]


def child_env() -> dict[str, str]:
    """The environment for a child Python that imports this checkout of nexus_ls."""
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    """A journal with a few runs' worth of events at known times."""
    journal = Journal(tmp_path / "journal.jsonl", Redactor({}))
    rows = [
        ("2024-01-01T10:00:00Z", "INFO", "run", "20240101-aaa", None, "run started", {}),
        ("2024-01-01T10:00:01Z", "DEBUG", "model", "20240101-aaa", 1, "model replied", {}),
        ("2024-01-01T10:00:02Z", "INFO", "tool", "20240101-aaa", 1, "read_file", {"p": "a.py"}),
        ("2024-01-01T10:00:03Z", "WARNING", "command", "20240101-aaa", 2, "exit 1", {}),
        ("2024-03-01T09:00:00Z", "INFO", "run", "20240301-bbb", None, "run started", {}),
        ("2024-03-01T09:00:01Z", "ERROR", "error", "20240301-bbb", 1, "model unreachable", {}),
        ("2024-03-01T09:00:02Z", "INFO", "tool", "20240301-bbb", 1, "search", {"q": "Needle"}),
        ("2024-03-01T09:00:03Z", "INFO", "metric", None, None, "tokens", {"prompt": 12}),
    ]
    for ts, level, category, run, step, message, data in rows:
        journal.log(level, category, message, ts=ts, run=run, step=step, data=data)
    return journal


def messages(events: list[dict]) -> list[str]:
    return [event["message"] for event in events]


def test_for_state_dir_creates_the_directory(tmp_path: Path) -> None:
    journal = Journal.for_state_dir(tmp_path / "git" / "nexus")
    journal.log("INFO", "run", "hello")
    assert journal.path == tmp_path / "git" / "nexus" / "journal.jsonl"
    assert journal.path.read_text().count("\n") == 1


def test_query_without_filters_is_everything_in_order(journal: Journal) -> None:
    events = journal.query()
    assert len(events) == 8
    assert [event["ts"] for event in events] == sorted(event["ts"] for event in events)


def test_query_by_run_matches_exactly_or_by_prefix(journal: Journal) -> None:
    assert len(journal.query(run="20240101-aaa")) == 4
    assert len(journal.query(run="20240301")) == 3
    assert len(journal.query(run="2024")) == 7
    assert journal.query(run="20240101-aaax") == []


def test_query_by_minimum_level(journal: Journal) -> None:
    assert messages(journal.query(level="WARNING")) == ["exit 1", "model unreachable"]
    assert messages(journal.query(level="error")) == ["model unreachable"]
    assert len(journal.query(level="DEBUG")) == 8
    assert len(journal.query(level="INFO")) == 7


def test_query_by_category(journal: Journal) -> None:
    assert messages(journal.query(category="tool")) == ["read_file", "search"]


def test_query_by_grep_looks_in_message_and_data_ignoring_case(journal: Journal) -> None:
    assert messages(journal.query(grep="MODEL")) == ["model replied", "model unreachable"]
    assert messages(journal.query(grep="needle")) == ["search"]
    assert messages(journal.query(grep="a.py")) == ["read_file"]
    assert journal.query(grep="nowhere to be found") == []


def test_query_since(journal: Journal) -> None:
    since = parse_since("2024-03-01")
    assert len(journal.query(since=since)) == 4
    assert messages(journal.query(since=datetime(2024, 3, 1, 9, 0, 2))) == ["search", "tokens"]


def test_query_since_relative_time(journal: Journal) -> None:
    journal.log("INFO", "metric", "just now")
    assert messages(journal.query(since=parse_since("10m"))) == ["just now"]


def test_filters_combine(journal: Journal) -> None:
    events = journal.query(run="20240301", level="INFO", category="tool", grep="search")
    assert messages(events) == ["search"]


def test_limit_keeps_the_newest_oldest_first(journal: Journal) -> None:
    assert messages(journal.query(limit=2)) == ["search", "tokens"]
    assert messages(journal.query(run="20240101", limit=3)) == [
        "model replied",
        "read_file",
        "exit 1",
    ]
    assert journal.query(limit=0) == []
    assert len(journal.query(limit=100)) == 8


def test_query_results_are_the_callers_own(journal: Journal) -> None:
    first = journal.query(category="tool")[0]
    first["message"] = "changed by a caller"
    first["data"]["p"] = "b.py"
    again = journal.query(category="tool")[0]
    assert (again["message"], again["data"]) == ("read_file", {"p": "a.py"})


def test_bad_filters_are_refused(journal: Journal) -> None:
    with pytest.raises(ValueError, match="invalid level"):
        journal.query(level="LOUD")
    with pytest.raises(ValueError, match="invalid category"):
        journal.query(category="nope")
    with pytest.raises(ValueError, match="invalid limit"):
        journal.query(limit=-1)


def test_append_validates_and_fills_in(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl", Redactor({}))
    stored = journal.append({"level": "info", "category": "edit", "message": "a\nb"})
    assert stored["id"] and stored["ts"].endswith("Z")
    assert (stored["level"], stored["message"]) == ("INFO", "a b")
    kept = journal.append({**stored, "message": "again"})
    assert (kept["id"], kept["ts"]) == (stored["id"], stored["ts"])
    with pytest.raises(ValueError, match="unknown event fields"):
        journal.append({"level": "INFO", "category": "edit", "message": "x", "colour": "red"})
    with pytest.raises(ValueError, match="missing category"):
        journal.append({"level": "INFO", "message": "x"})
    with pytest.raises(ValueError, match="invalid category"):
        journal.log("INFO", "edits", "x")
    assert messages(journal.query()) == ["a b", "again"]


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("90s", timedelta(seconds=90)),
        ("10m", timedelta(minutes=10)),
        ("2h", timedelta(hours=2)),
        ("3d", timedelta(days=3)),
        (" 5M ", timedelta(minutes=5)),
    ],
)
def test_parse_since_durations_count_back_from_now(text: str, delta: timedelta) -> None:
    before = datetime.now(timezone.utc)
    moment = parse_since(text)
    after = datetime.now(timezone.utc)
    assert before - delta <= moment <= after - delta


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=timezone.utc)),
        ("2024-05-01T12:30:00Z", datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)),
        ("2024-05-01T14:30:00+02:00", datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)),
        ("2024-05-01 12:30", datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)),
    ],
)
def test_parse_since_iso(text: str, expected: datetime) -> None:
    assert parse_since(text) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "10 minutes", "-5m", "5y"])
def test_parse_since_refuses_other_text_saying_what_works(text: str) -> None:
    with pytest.raises(ValueError, match="use a duration such as 90s, 10m, 2h or 3d"):
        parse_since(text)


APPENDER = """
import sys
from pathlib import Path
from nexus_ls.journal import Journal, Redactor
journal = Journal(Path(sys.argv[1]), Redactor({}))
journal.log("INFO", "metric", "not for the follower", run="other-run")
journal.log("INFO", "tool", "from the child", run="20240301-bbb", step=2)
"""


def test_follow_yields_existing_then_events_from_another_process(journal: Journal) -> None:
    deadline = time.monotonic() + 60  # only a guard against hanging; no timing is asserted
    stream = journal.follow(poll=0.02, stop=lambda: time.monotonic() > deadline, run="20240301")
    existing = [next(stream) for _ in range(3)]
    assert messages(existing) == ["run started", "model unreachable", "search"]

    subprocess.run([sys.executable, "-c", APPENDER, str(journal.path)], env=child_env(), check=True)
    arrived = next(stream, None)
    assert arrived is not None and arrived["message"] == "from the child"
    assert arrived["step"] == 2
    stream.close()


def test_follow_waits_without_the_index_lock_while_nothing_is_appended(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A follower polls five times a second for as long as it lives; it must not hold up
    the processes that write the index (a run's end, another search) while nothing comes."""
    monkeypatch.setattr(index_module, "WAIT_MS", 100)  # a wait for the lock fails at once
    polls = itertools.count()
    stream = journal.follow(poll=0.001, stop=lambda: next(polls) > 50)
    assert len([next(stream) for _ in range(8)]) == 8
    holder = sqlite3.connect(index_path(journal.path), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process filling the index
    try:
        assert list(stream) == []  # 50 polls, none of them waiting for the lock
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_follow_with_limit_starts_from_the_newest(journal: Journal) -> None:
    stream = journal.follow(poll=0.01, stop=lambda: True, limit=1)
    assert messages(list(stream)) == ["tokens"]
