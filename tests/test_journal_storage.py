"""The append-only storage with real files and real processes: concurrency, kill -9, torn lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from tinydb import TinyDB

from nexus_ls.journal import AppendOnlyError, Journal, JsonLinesStorage, Redactor

REPO = Path(__file__).resolve().parents[1]


def child_env() -> dict[str, str]:
    """The environment for a child Python that imports this checkout of nexus_ls."""
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


def journal_at(path: Path) -> Journal:
    return Journal(path, Redactor({}))


def line(message: str, **fields: object) -> str:
    event = {"level": "INFO", "category": "metric", "message": message, "data": {}, **fields}
    return json.dumps(event) + "\n"


WRITER = """
import sys
from pathlib import Path
from nexus_ls.journal import Journal, Redactor
journal = Journal(Path(sys.argv[1]), Redactor({}))
writer, count = sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()
for i in range(count):
    pad = "x" * (i * 373 % 9000)  # lines from tens of bytes to over two pages
    journal.log("INFO", "metric", f"{writer} {i}", agent=writer, data={"i": i, "pad": pad})
"""


def test_concurrent_processes_lose_and_tear_nothing(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    writers, count = 6, 300
    children = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), f"w{n}", str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        for n in range(writers)
    ]
    for child in children:  # every writer is started and waiting ...
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
    for child in children:  # ... then all are released at once
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.close()
    for child in children:
        assert child.wait() == 0
        assert child.stdout is not None
        child.stdout.close()

    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    events = [json.loads(text) for text in raw.split(b"\n")[:-1]]
    assert len(events) == writers * count
    assert len({event["id"] for event in events}) == writers * count
    for n in range(writers):
        mine = [event["data"]["i"] for event in events if event["agent"] == f"w{n}"]
        assert mine == list(range(count))  # each writer's events complete and in order
    reader = journal_at(path)
    assert len(reader.query()) == writers * count
    assert reader.storage.corrupt == 0


def test_threads_sharing_one_journal_lose_nothing(tmp_path: Path) -> None:
    journal = journal_at(tmp_path / "journal.jsonl")
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        barrier.wait()
        for i in range(200):
            journal.log("INFO", "metric", f"t{n} {i}", data={"pad": "y" * (i * 97 % 5000)})
            if i % 50 == 0:
                journal.query(grep=f"t{n} ")  # readers and writers interleave

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = journal_at(tmp_path / "journal.jsonl").query()
    assert len(events) == 1600
    assert len({event["message"] for event in events}) == 1600


KILLED_WRITER = """
import sys
from pathlib import Path
from nexus_ls.journal import Journal, Redactor
journal = Journal(Path(sys.argv[1]), Redactor({}))
i = 0
while True:
    i += 1
    journal.log("INFO", "metric", f"event {i}", data={"i": i})
    print(f"written {i}", flush=True)
"""


def test_every_event_reported_written_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    with subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    ) as child:
        assert child.stdout is not None
        reported = 0
        for text in child.stdout:
            reported = int(text.split()[1])
            if reported == 250:
                break
        assert reported == 250
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait() == -signal.SIGKILL

    journal = journal_at(path)
    numbers = {event["data"]["i"] for event in journal.query()}
    assert set(range(1, reported + 1)) <= numbers
    journal.log("INFO", "metric", "after the kill")
    assert journal_at(path).query()[-1]["message"] == "after the kill"


def test_torn_trailing_line_is_skipped_and_later_appends_read_fine(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text(line("one") + line("two") + '{"level": "INFO", "message": "tor')
    journal = journal_at(path)
    assert [event["message"] for event in journal.query()] == ["one", "two"]
    assert journal.skipped == 0  # not corrupt yet: it may still be being written

    journal.log("INFO", "metric", "three")
    assert [event["message"] for event in journal.query()] == ["one", "two", "three"]
    assert journal.skipped == 1  # the torn line was closed off, never merged
    fresh = journal_at(path)
    assert [event["message"] for event in fresh.query()] == ["one", "two", "three"]


def test_line_completed_later_is_read_once_complete(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    whole = line("slow writer")
    path.write_text(line("first") + whole[:10])
    journal = journal_at(path)
    assert [event["message"] for event in journal.query()] == ["first"]
    with path.open("a") as handle:
        handle.write(whole[10:])
    assert [event["message"] for event in journal.query()] == ["first", "slow writer"]
    assert journal.skipped == 0


def test_corrupt_line_in_the_middle_is_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(
        (line("one") + "not json at all\n" + "[1, 2]\n" + "\n" + line("two")).encode()
        + b"\xff\xfe garbage\n"
        + line("three").encode()
    )
    journal = journal_at(path)
    assert [event["message"] for event in journal.query()] == ["one", "two", "three"]
    assert journal.skipped == 3


def test_reads_are_incremental(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    storage = JsonLinesStorage(path)
    storage.append({"message": "a"})
    first = storage.read()["events"]
    other = JsonLinesStorage(path)  # another writer
    other.append({"message": "b"})
    second = storage.read()["events"]
    assert list(second) == ["1", "2"]
    assert second["1"] is first["1"]  # parsed once, not again
    assert second["2"] == {"message": "b"}


def test_stored_events_cannot_be_changed_in_place(tmp_path: Path) -> None:
    storage = JsonLinesStorage(tmp_path / "journal.jsonl")
    storage.append({"message": "a"})
    event = storage.read()["events"]["1"]
    with pytest.raises(AppendOnlyError):
        event["message"] = "b"
    with pytest.raises(AppendOnlyError):
        event.update(message="b")
    assert dict(event) == {"message": "a"}


def test_tinydb_api_appends_but_never_rewrites(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    with TinyDB(path, storage=JsonLinesStorage) as db:
        table = db.table("events")
        assert table.insert({"message": "a"}) == 1
        assert table.insert_multiple([{"message": "b"}, {"message": "c"}]) == [2, 3]
        before = path.read_bytes()
        with pytest.raises(AppendOnlyError):
            table.update({"message": "changed"}, doc_ids=[1])
        with pytest.raises(AppendOnlyError):
            table.remove(doc_ids=[2])
        with pytest.raises(AppendOnlyError):
            table.truncate()
        with pytest.raises(AppendOnlyError):
            db.table("other").insert({"x": 1})
        assert path.read_bytes() == before
        assert [doc["message"] for doc in table.all()] == ["a", "b", "c"]
        assert [doc.doc_id for doc in table.all()] == [1, 2, 3]


def test_append_after_the_file_was_removed_recreates_it(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = journal_at(path)
    journal.log("INFO", "metric", "old")
    path.unlink()
    journal.log("INFO", "metric", "new")
    assert [event["message"] for event in journal_at(path).query()] == ["new"]
    assert [event["message"] for event in journal.query()] == ["new"]


def test_durable_storage_appends(tmp_path: Path) -> None:
    storage = JsonLinesStorage(tmp_path / "deep" / "journal.jsonl", durable=True)
    storage.append({"message": "synced", "text": "ünïcödé \u2028 ok"})
    assert storage.read()["events"]["1"]["text"] == "ünïcödé \u2028 ok"
    assert (tmp_path / "deep" / "journal.jsonl").read_bytes().count(b"\n") == 1


def test_lone_surrogates_survive_a_round_trip(tmp_path: Path) -> None:
    storage = JsonLinesStorage(tmp_path / "journal.jsonl")
    text = b"caf\xe9 \\ done".decode("utf-8", errors="surrogateescape")
    storage.append({"output": text})
    assert storage.read()["events"]["1"]["output"] == text
    assert storage.corrupt == 0
