"""The journal through the real `nexus` command line: search, follow, export and review commands.

A module fixture makes one workspace with two real runs (one succeeds, one fails after a tool
error and is then discarded); every test reads that journal through a `nexus` subprocess.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

import pytest
from conftest import clean_env, make_repo, nexus, nexus_command
from scripted_model import ScriptedModel, call

FIELDS = {"id", "ts", "level", "category", "run", "agent", "step", "message", "data"}
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
CATEGORIES = {
    "run", "model", "tool", "edit", "command", "test", "memory", "agent", "message", "metric",
    "error",
}  # fmt: skip


@dataclass(frozen=True)
class Workspace:
    repo: Path
    ok: str  # the run that succeeded
    failed: str  # the run that failed, then was discarded


def run_once(repo: Path, task: str, script: list) -> dict[str, Any]:
    with ScriptedModel(script) as server:
        result = nexus(repo, "run", task, "--json", "--base-url", server.url)
    assert result.stdout.strip(), result.stderr
    return result.json()


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    repo = make_repo(tmp_path_factory.mktemp("journal") / "proj", {"a.txt": "a\n"})
    ok = run_once(
        repo,
        "write <b>notes</b>",
        [
            call(
                "write_file", "Notes help; <script>x</script> stays text.", path="n.md", content="n"
            ),
            call("finish", summary="wrote the notes"),
        ],
    )
    failed = run_once(
        repo,
        "read the missing file",
        [
            call("read_file", "I read it.", path="Missing_File.py"),
            call("finish", summary="could not read it", success=False),
        ],
    )
    assert (ok["status"], failed["status"]) == ("succeeded", "failed")
    assert nexus(repo, "discard", failed["run_id"]).code == 0
    return Workspace(repo, ok["run_id"], failed["run_id"])


def log(ws: Workspace, *args: str) -> list[dict[str, Any]]:
    result = nexus(ws.repo, "log", "--json", *args)
    assert result.code == 0, result.stderr
    return result.lines()


def shortest_unique_prefix(run_id: str, others: list[str]) -> str:
    for n in range(1, len(run_id) + 1):
        if not any(other.startswith(run_id[:n]) for other in others):
            return run_id[:n]
    raise AssertionError(f"{run_id} is a prefix of another run id")


def test_json_is_one_event_per_line_with_the_schema(ws: Workspace) -> None:
    result = nexus(ws.repo, "log", "--json")
    lines = result.stdout.splitlines()
    events = [json.loads(line) for line in lines]
    assert len(events) > 10
    for event in events:
        assert set(event) == FIELDS
        assert event["ts"].endswith("Z") and datetime.fromisoformat(event["ts"][:-1])
        assert event["level"] in LEVELS and event["category"] in CATEGORIES
        assert event["step"] is None or isinstance(event["step"], int)
        assert isinstance(event["data"], dict) and "\n" not in event["message"]
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
    assert len({e["id"] for e in events}) == len(events)
    assert {e["run"] for e in events} == {ws.ok, ws.failed}
    plain = nexus(ws.repo, "log").stdout.splitlines()
    assert len(plain) == len(events)
    assert all(ev["message"] in line for ev, line in zip(events, plain, strict=True))


def test_run_filter_takes_a_unique_prefix(ws: Workspace) -> None:
    prefix = shortest_unique_prefix(ws.ok, [ws.failed])
    by_prefix = log(ws, "--run", prefix)
    assert by_prefix == log(ws, "--run", ws.ok)
    assert {e["run"] for e in by_prefix} == {ws.ok}
    assert by_prefix[0]["message"] == "run started: write <b>notes</b>"
    assert by_prefix[-1]["message"].startswith("run succeeded")
    common = ws.ok[: len(prefix) - 1]
    ambiguous = nexus(ws.repo, "log", "--run", common)
    assert ambiguous.code == 2 and "several runs" in ambiguous.stderr


def test_level_is_a_minimum(ws: Workspace) -> None:
    events = log(ws, "--level", "warning")
    assert events and {e["level"] for e in events} == {"WARNING", "ERROR"}
    assert any("Missing_File.py" in e["message"] for e in events if e["level"] == "WARNING")
    assert any(e["message"].startswith("run failed") for e in events if e["level"] == "ERROR")
    every = log(ws)
    assert events == [e for e in every if e["level"] in ("WARNING", "ERROR")]
    assert log(ws, "--level", "ERROR") == [e for e in every if e["level"] == "ERROR"]


def test_category_filter(ws: Workspace) -> None:
    edits = log(ws, "--category", "edit")
    assert edits and {e["category"] for e in edits} == {"edit"}
    assert edits == [e for e in log(ws) if e["category"] == "edit"]
    assert any(e["data"].get("commit") for e in edits)


def test_grep_is_case_insensitive_over_message_and_data(ws: Workspace) -> None:
    found = log(ws, "--grep", "MISSING_file.PY")
    assert found and {e["run"] for e in found} == {ws.failed}
    assert any("Missing_File.py" in e["message"] for e in found)
    for event in found:
        text = (event["message"] + json.dumps(event["data"], ensure_ascii=False)).lower()
        assert "missing_file.py" in text
    # The model's words are in the data of the model and write_file events (the step's
    # commit also names itself by them): grep finds the events where only the data has it.
    rationale = log(ws, "--grep", "STAYS TEXT")
    only_data = [e for e in rationale if "stays text" not in e["message"].lower()]
    assert {e["category"] for e in only_data} >= {"model", "edit"}


def test_since(ws: Workspace) -> None:
    assert log(ws, "--since", "1h") == log(ws)
    future = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = nexus(ws.repo, "log", "--since", future)
    assert (result.code, result.stdout) == (0, "")


def test_bad_since_is_a_usage_error(ws: Workspace) -> None:
    result = nexus(ws.repo, "log", "--since", "yesterday-ish")
    assert result.code == 2
    assert "yesterday-ish" in result.stderr and "10m" in result.stderr
    assert "Traceback" not in result.stderr


def test_limit_keeps_the_newest_oldest_first(ws: Workspace) -> None:
    every = log(ws)
    assert log(ws, "--limit", "3") == every[-3:]
    assert log(ws, "--limit", "2", "--run", ws.failed) == log(ws, "--run", ws.failed)[-2:]


def test_unknown_run_is_a_usage_error(ws: Workspace) -> None:
    for command in (("log", "--run", "nosuchrun"), ("diff", "nosuchrun"), ("show", "zz")):
        result = nexus(ws.repo, *command)
        assert result.code == 2, command
        assert "no run matches" in result.stderr and "nexus runs" in result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [("--category", "bogus"), ("--limit", "-1")])
def test_bad_filters_are_usage_errors(ws: Workspace, args: tuple[str, str]) -> None:
    result = nexus(ws.repo, "log", *args)
    assert result.code == 2
    assert "Traceback" not in result.stderr and "nexus: error:" in result.stderr


def test_show_json_shape(ws: Workspace) -> None:
    shown = nexus(ws.repo, "show", ws.ok[:-1], "--json").json()
    assert set(shown) == {"run", "events"}
    run = shown["run"]
    assert run["id"] == ws.ok and run["status"] == "succeeded" and run["review"] is None
    assert run["branch"] == f"nexus/{ws.ok}" and run["task"] == "write <b>notes</b>"
    assert run["summary"] == "wrote the notes" and run["steps"] == 2
    assert run["tokens"]["prompt"] > 0 and len(run["base"]) == len(run["head"]) == 40
    assert shown["events"] == log(ws, "--run", ws.ok)


def test_runs_lists_ids_newest_first(ws: Workspace) -> None:
    result = nexus(ws.repo, "runs")
    assert result.code == 0
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [ws.failed, ws.ok]
    assert "(discarded)" in lines[0] and "succeeded" in lines[1]
    listed = nexus(ws.repo, "runs", "--json").json()
    created = [r["created"] for r in listed]
    assert created == sorted(created, reverse=True)


def test_run_ids_made_in_one_second_still_sort_by_time() -> None:
    # `nexus runs` (RunStore.list) orders by id; an editor can start two runs in one second.
    from nexus_ls.runs import new_run_id

    ids = [new_run_id() for _ in range(30)]
    assert sorted(ids) == ids


def test_accept_of_a_discarded_run_is_refused(ws: Workspace) -> None:
    result = nexus(ws.repo, "accept", ws.failed)
    assert result.code == 2
    assert "discarded" in result.stderr and f"nexus log --run {ws.failed}" in result.stderr
    assert not (ws.repo / "n.md").exists() and "Traceback" not in result.stderr


@pytest.mark.parametrize("fmt", ["jsonl", "md", "html"])
def test_export_to_stdout_and_file(ws: Workspace, fmt: str, tmp_path: Path) -> None:
    shown = nexus(ws.repo, "export", "--format", fmt)
    assert shown.code == 0, shown.stderr
    target = tmp_path / f"journal.{fmt}"
    written = nexus(ws.repo, "export", "--format", fmt, "-o", str(target))
    assert written.code == 0 and written.stdout == "" and str(target) in written.stderr
    assert target.read_text(encoding="utf-8") == shown.stdout
    text = shown.stdout
    if fmt == "jsonl":
        assert [json.loads(line) for line in text.splitlines()] == log(ws)
    elif fmt == "md":
        assert text.startswith("# NEXUS journal\n")
        rows = [line for line in text.splitlines() if line.startswith("| 20")]
        assert len(rows) == len(log(ws)) and "run started: write <b>notes</b>" in text
    else:
        assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
        assert "<script>" not in text and "<b>notes" not in text
        assert "write &lt;b&gt;notes&lt;/b&gt;" in text and "&lt;script&gt;x" in text


def test_export_of_one_run(ws: Workspace) -> None:
    text = nexus(ws.repo, "export", "--run", ws.failed[:-1], "--format", "jsonl").stdout
    assert [json.loads(line) for line in text.splitlines()] == log(ws, "--run", ws.failed)


def test_agent_process_exits_cleanly(ws: Workspace) -> None:
    ended = log(ws, "--run", ws.ok, "--category", "run", "--grep", "run succeeded")
    assert ended[-1]["data"]["exit_code"] == 0


# --follow -------------------------------------------------------------------------------


def line_reader(stream: IO[str]) -> queue.Queue[str | None]:
    """Lines of `stream` on a queue (None at EOF), so a test can wait with a deadline."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def events_until(lines: queue.Queue[str | None], done: Any, within: float) -> Iterator[dict]:
    """Events from the follower until `done(event)`; fails if the deadline passes first."""
    deadline = time.monotonic() + within
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"no matching event within {within} s") from None
        assert line is not None, "nexus log --follow ended early"
        event = json.loads(line)
        yield event
        if done(event):
            return


def test_follow_prints_events_of_a_later_run(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    first = run_once(repo, "first", [call("finish", summary="one")])
    last_existing = nexus(repo, "log", "--json").lines()[-1]["id"]
    follower = subprocess.Popen(
        [*nexus_command(), "log", "--follow", "--json"],
        cwd=repo,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        lines = line_reader(follower.stdout)
        existing = list(events_until(lines, lambda e: e["id"] == last_existing, 30))
        assert {e["run"] for e in existing} == {first["run_id"]}

        second = run_once(repo, "second", [call("finish", summary="two")])["run_id"]

        def ended(event: dict) -> bool:
            return event["run"] == second and event["message"].startswith("run succeeded")

        new = list(events_until(lines, ended, 30))
        assert new[0]["run"] == second and new[0]["message"] == "run started: second"
        assert {e["run"] for e in new} == {second}
        assert new == nexus(repo, "log", "--run", second, "--json").lines()
    finally:
        follower.kill()
        follower.wait()


def test_a_reader_that_stops_early_ends_the_search_quietly(tmp_path: Path) -> None:
    """`nexus log | head`: output is no longer flushed per event, so the closed pipe
    shows up at the end; it must still end with exit 0 and no traceback."""
    from nexus_ls.journal import Journal, Redactor

    repo = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    journal = Journal(repo / ".git" / "nexus" / "journal.jsonl", Redactor({}))
    for n in range(3000):  # far more than a pipe holds
        journal.log("INFO", "tool", f"event {n} " + "x" * 100, run="20240101-aaa")
    journal.close()
    reader = subprocess.Popen(["head", "-c", "100"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    search = subprocess.run(
        [*nexus_command(), "log", "--json"],
        cwd=repo,
        env=clean_env(),
        stdout=reader.stdin,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )
    got = reader.communicate(timeout=60)[0]
    assert got.startswith(b'{"id": ')
    assert search.returncode == 0
    assert search.stderr == ""


FAILING_SEARCH = """
import sys
from nexus_ls import cli
from nexus_ls.errors import NexusError
from nexus_ls.journal import store

found = store.Journal.events

def events(self, **filters):  # the journal replaced under the search, after three events
    for n, event in enumerate(found(self, **filters)):
        if n == 3:
            raise NexusError("cannot search the journal: it was replaced during the search")
        yield event

store.Journal.events = events
sys.exit(cli.main(["log", "--json"]))
"""


def test_an_error_mid_search_comes_after_what_was_found(tmp_path: Path) -> None:
    from nexus_ls.journal import Journal, Redactor

    repo = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    journal = Journal(repo / ".git" / "nexus" / "journal.jsonl", Redactor({}))
    for n in range(10):
        journal.log("INFO", "tool", f"event {n}", run="20240101-aaa")
    journal.close()
    env = {k: v for k, v in clean_env().items() if k != "PYTHONUNBUFFERED"}  # as for a user
    done = subprocess.run(
        [sys.executable, "-c", FAILING_SEARCH],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one stream, as `2>&1` gives a terminal or a file
        text=True,
        timeout=60,
    )
    lines = done.stdout.splitlines()
    assert done.returncode == 2
    assert [json.loads(line)["message"] for line in lines[:3]] == ["event 0", "event 1", "event 2"]
    assert lines[3:] == [
        "nexus: error: cannot search the journal: it was replaced during the search"
    ]


def test_help_before_the_command_lists_every_command(tmp_path: Path) -> None:
    for argv in (["-h", "log"], ["--help", "run"], ["--he", "log"], ["--help"]):
        shown = nexus(tmp_path, *argv).stdout
        for command in ("run", "runs", "show", "diff", "log", "export", "memory", "serve"):
            assert f"    {command} " in shown, (argv, command)
