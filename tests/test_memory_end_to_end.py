"""The issue's test: a lesson learned in one real `nexus run` is in the next run's first
model request, and its weight moves with `nexus accept` and `nexus discard`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import make_repo, nexus
from scripted_model import call

CALC = "def add(a, b):\n    return a - b\n"
TEST = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"


def lesson(repo: Path, lesson_id: str) -> dict[str, Any]:
    shown = nexus(repo, "memory", "show", lesson_id, "--json")
    assert shown.code == 0, shown.stderr
    return dict(shown.json())


def test_a_lesson_learned_in_one_run_reaches_the_next_and_moves_with_review(
    tmp_path: Path, model
) -> None:
    repo = make_repo(tmp_path / "proj", {"calc.py": CALC, "test_calc.py": TEST})
    first = model([
        call("run_tests", why="First I run the tests."),
        call("edit_file", why="add subtracts; I make it add.", path="calc.py",
             old="return a - b", new="return a + b"),
        call("run_tests", why="Now they should pass."),
        call("finish", summary="add() adds"),
    ])  # fmt: skip
    run1 = nexus(repo, "run", "fix the failing test", "--json", "--base-url", first.url).json()
    assert run1["status"] == "succeeded"
    learned = nexus(repo, "memory", "list", "--json").json()
    by_kind = {item["kind"]: item for item in learned}
    tests = by_kind["test-command"]
    command = tests["command"]
    assert tests["text"] == f"Tests run with `{command}`" and tests["source_run"] == run1["run_id"]
    assert by_kind["fix"]["text"].endswith(
        "after a change to calc.py: add subtracts; I make it add"
    )

    # The next run's first request carries the lesson, marked with the run it came from.
    second = model([call("finish", summary="nothing to do")])
    run2 = nexus(repo, "run", "check the tests", "--json", "--base-url", second.url).json()
    first_prompt = second.requests[0]["messages"][1]["content"]
    line = f"- Tests run with `{command}` (learned in run {run1['run_id']})"
    assert line in first_prompt
    assert first_prompt.index("Lessons from earlier runs") < first_prompt.index("Task: check")
    used = lesson(repo, tests["id"])
    assert used["uses"] == 1 and used["used_by"] == [run2["run_id"]]
    offered = nexus(repo, "log", "--run", run2["run_id"], "--category", "memory", "--json")
    assert offered.lines()[0]["data"]["action"] == "offered"
    assert tests["id"] in offered.lines()[0]["data"]["lessons"]

    # Accepting the run that used it raises its weight; discarding one lowers it.
    before = used["strength"]
    assert nexus(repo, "accept", run2["run_id"]).code == 0
    accepted = lesson(repo, tests["id"])["strength"]
    assert accepted > before
    third = model([call("finish", summary="still nothing")])
    run3 = nexus(repo, "run", "run the tests", "--json", "--base-url", third.url).json()
    assert f"(learned in run {run1['run_id']})" in third.requests[0]["messages"][1]["content"]
    assert nexus(repo, "discard", run3["run_id"]).code == 0
    after_discard = lesson(repo, tests["id"])
    discarded = after_discard["strength"]
    assert discarded < accepted

    moves = [e for e in nexus(repo, "log", "--category", "memory", "--json").lines()
             if e["data"].get("lesson") == tests["id"]]  # fmt: skip
    assert [(e["run"], e["data"]["action"]) for e in moves] == [
        (run2["run_id"], "accepted"), (run3["run_id"], "discarded")
    ]  # fmt: skip
    # Each verdict is a lesson of its own, for runs on similar tasks.
    reviews = [item["text"] for item in nexus(repo, "memory", "list", "--json").json()
               if item["kind"] == "review"]  # fmt: skip
    assert sorted(reviews) == [
        "The user accepted a run that changed no file, for the task “check the tests”",
        "The user discarded a run that changed no file, for the task “run the tests”",
    ]
    # A discard after an accept is tidying up, not a verdict: nothing moves.
    assert nexus(repo, "discard", run2["run_id"]).code == 0
    assert lesson(repo, tests["id"])["weight"] == after_discard["weight"]
