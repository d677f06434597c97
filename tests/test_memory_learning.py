"""Learning from a run's journal: the rules, on the events the agent really journals (an
in-process run of the real loop and tools on a real repository), and how weights move."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from agent_harness import run_agent
from conftest import make_repo
from scripted_model import call

from nexus_ls.agent.starting_context import starting_context
from nexus_ls.journal import Journal, Redactor, new_event_id
from nexus_ls.memory import WorkspaceMemory
from nexus_ls.memory.learning import environment_reason, learn, similar

CALC = "def add(a, b):\n    return a - b\n"
TEST = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
RUN = "20261202-101010101-abcd"


def journaled(repo: Path, script: list[Any], task: str = "fix the failing test") -> list[dict]:
    """A real in-process run's events as the host journals them: each with an id and the
    run, after the agent's starting-context event."""
    ran = run_agent(repo, script, task)
    context = {"level": "INFO", "category": "agent", "message": "starting context",
               "step": None, "data": {"starting_context": starting_context(repo)}}  # fmt: skip
    return [{**e, "id": new_event_id(), "run": RUN} for e in [context, *ran.events]]


@pytest.fixture(scope="module")
def fix_run(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """One real fix run, shared by the tests that read it (its commands take seconds)."""
    files = {"calc.py": CALC, "test_calc.py": TEST, "AGENTS.md": "Keep functions small.\n"}
    repo = make_repo(tmp_path_factory.mktemp("fix") / "p", files)
    return journaled(repo, [
        call("run_command", why="try pytest", command="pytestx -q"),
        call("run_command", why="the module, then", command="python3 -m pytest -q"),
        call("run_tests", why="the tests, then"),
        call("edit_file", why="add subtracts; I fix the operator.", path="calc.py",
             old="return a - b", new="return a + b"),
        call("run_tests", why="check"),
        call("finish", summary="fixed"),
    ])  # fmt: skip


def test_a_fix_run_teaches_the_test_command_the_environment_fix_the_fix_and_conventions(
    fix_run: list[dict],
) -> None:
    events = fix_run
    findings = learn(events)
    by_kind = {lesson.kind: lesson for lesson in findings.learned}
    test_command = next(e["data"]["details"]["command"] for e in events
                        if e["category"] == "test")  # fmt: skip

    assert by_kind["test-command"].text == f"Tests run with `{test_command}`"
    assert by_kind["test-command"].command == test_command
    env = by_kind["environment"]
    assert env.text == (
        "`pytestx -q` fails here (pytestx: command not found); "
        "`python3 -m pytest -q` runs (exit 1) instead"
    )
    assert env.command == "python3 -m pytest -q" and len(env.evidence) == 2
    fix = by_kind["fix"]
    assert fix.text == (
        f"`{test_command}` failed (test_calc.py::test_add) and passed after a change to "
        "calc.py: add subtracts; I fix the operator"
    )
    assert {"calc.py", "test_add"} <= set(fix.tags)
    assert len(fix.evidence) == 3  # the failing test run, the commit, the passing run
    ids = {e["id"] for e in events}
    assert all(evidence in ids for lesson in findings.learned for evidence in lesson.evidence)
    convention = by_kind["convention"]
    assert convention.text.endswith("it starts: Keep functions small.")
    assert findings.tests_passed is True
    failed = next(e for e in events if e["category"] == "command")
    assert findings.failed == {"pytestx -q": ("pytestx: command not found", failed["id"])}


def test_environment_reasons_and_similar_commands() -> None:
    assert environment_reason(127, "/bin/sh: 1: rg: not found\n") == "rg: command not found"
    assert environment_reason(127, "bash: tox: command not found") == "tox: command not found"
    assert environment_reason(1, "ModuleNotFoundError: No module named 'yaml'") == (
        "no module named yaml"
    )
    assert environment_reason(1, "Error: Cannot find module 'jest'") == "cannot find module jest"
    assert environment_reason(1, "FAILED test_a.py::test_x - assert 1 == 2") is None
    assert environment_reason(0, "not found") is None
    assert similar("pytest -q", "python3 -m pytest -q")
    assert similar("npm test", "yarn test")
    assert not similar("rg foo", "ls -la")


def test_tests_that_were_never_red_teach_no_fix(fix_run: list[dict]) -> None:
    green = [e for e in fix_run if e["category"] == "test"][-1:]
    assert [lesson.kind for lesson in learn(green).learned] == ["test-command"]
    red = [e for e in fix_run if e["category"] == "test"][:1]
    assert learn(red).learned == [] and learn(red).tests_passed is False


def memory_with_journal(state: Path) -> WorkspaceMemory:
    state.mkdir(parents=True, exist_ok=True)
    return WorkspaceMemory(state, Journal(state / "journal.jsonl", Redactor(environ={})))


def test_a_run_learns_into_memory_and_a_later_failure_of_its_command_contradicts_it(
    tmp_path: Path, fix_run: list[dict]
) -> None:
    memory = memory_with_journal(tmp_path / "state")
    for event in fix_run:
        memory.journal.append(event)
    taught = memory.learn_from_run(RUN)
    kinds = {"test-command", "environment", "fix", "convention"}
    assert {lesson.kind for lesson in taught} == kinds
    assert all(lesson.source_run == RUN for lesson in taught)
    env = next(lesson for lesson in memory.lessons() if lesson.kind == "environment")

    # A later run where `python3 -m pytest -q` fails for want of pytest contradicts it.
    later = "20261203-101010101-beef"
    memory.journal.log(
        "INFO", "command", "step 1: run_command — exit code 1", run=later, step=1,
        data={"tool": "run_command", "arguments": {}, "details": {
            "command": "python3 -m pytest -q", "exit_code": 1,
            "output": "/usr/bin/python3: No module named pytest\n"}},
    )  # fmt: skip
    memory.learn_from_run(later)
    after = memory.get(env.id)
    assert after.weight == env.weight - 0.75
    assert after.evidence[-1] != env.evidence[-1]  # the failing event is its evidence now
    weighed = memory.journal.query(run=later, category="memory")
    assert [e["message"] for e in weighed] == [
        f"{env.id} contradicted: weight 1.00 → 0.25 (`python3 -m pytest -q` failed in "
        f"run {later} (no module named pytest))"
    ]
    # Below the floor it is no longer offered, though still listed.
    assert env.id not in [r.lesson.id for r in memory.ranked("pytest", fill=True)]
    assert env.id in [lesson.id for lesson in memory.lessons()]


def test_a_learned_lesson_carrying_a_redacted_secret_is_not_stored(tmp_path: Path) -> None:
    memory = memory_with_journal(tmp_path / "state")
    token = "ghp_" + "a1B2" * 10
    memory.journal.log(
        "INFO", "test", "step 1: run_tests", run=RUN, step=1,
        data={"tool": "run_tests", "arguments": {}, "details": {
            "command": f"TOKEN={token} pytest", "exit_code": 0, "passed": 3, "failed": 0,
            "output": "3 passed in 0.1s"}},
    )  # fmt: skip
    assert memory.learn_from_run(RUN) == []  # the journal redacted it: nothing learned
    assert memory.lessons() == []
    assert not memory.store.path.exists() or token not in memory.store.path.read_text()
