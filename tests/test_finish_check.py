"""Repair at finish: a run that broke tests is told once, and its outcome says if they
still fail (the agent loop in-process, on real git repositories and real pytest runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from agent_harness import run_agent
from conftest import make_repo, nexus, sh
from scripted_model import call

from nexus_ls.agent import finish_check
from nexus_ls.agent.finish_check import failing_tests, is_pytest, named_tests, names_match

CALC = (
    "def add(a, b):\n    return a + b\n\n\n"
    "def sub(a, b):\n    return a - b\n\n\n"
    "def mul(a, b):\n    return a + b\n"
)
TESTS = (
    "from calc import add, mul, sub\n\n\n"
    "def test_add():\n    assert add(2, 3) == 5\n\n\n"
    "def test_sub():\n    assert sub(5, 3) == 2\n\n\n"
    "def test_mul():\n    assert mul(2, 3) == 6\n"
)
BREAK_SUB = call("edit_file", path="calc.py", old="return a - b", new="return a * b")
FIX_SUB = call("edit_file", path="calc.py", old="return a * b", new="return a - b")
FIX_MUL = call("edit_file", path="calc.py", old="def mul(a, b):\n    return a + b",
               new="def mul(a, b):\n    return a * b")  # fmt: skip
TOUCH_README = call("write_file", path="README.md", content="calc\n")


def finish(summary: str = "done") -> dict:
    return call("finish", summary=summary)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "proj", {"calc.py": CALC, "test_calc.py": TESTS})


@pytest.fixture
def area(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where base checkouts go (the run's private area in a real run), to see them removed."""
    folder = tmp_path / "private"
    folder.mkdir()
    monkeypatch.setattr(finish_check, "_private_area", lambda ctx: str(folder))
    return folder


def check_events(ran, check: str) -> list[dict]:
    return [e for e in ran.events if e["category"] == "test" and e["data"].get("check") == check]


def test_a_regression_holds_the_finish_once_and_the_outcome_says_it(repo: Path, area: Path) -> None:
    base = sh(repo, "git", "rev-parse", "HEAD").strip()
    ran = run_agent(repo, [BREAK_SUB, finish("sub now multiplies"), finish("sub multiplies")])

    assert ran.outcome.status == "succeeded"
    assert ran.outcome.steps == 3
    assert ran.outcome.summary == (
        "sub multiplies\n\nTests still failing at finish: test_calc.py::test_sub."
    )
    # The first finish was answered with the notice, failures and all.
    notice = ran.model.prompts[2][-1]["content"]
    assert notice.startswith(
        "Before you finish: 1 test that passed at the start of this run now fails: "
        "test_calc.py::test_sub.\n"
    )
    assert "FAILED test_calc.py::test_sub" in notice
    assert "mul(2, 3)" not in notice and "test_mul" not in notice  # it failed at the base too
    assert (
        "\nFix it, or call finish again to end the run as it is (its outcome will then say "
        "that this test still fails)." in notice
    )
    assert "[budget left: " in notice
    # Journaled: the tests at finish, the failing ones at the base, the hold, the end.
    finishes, bases = check_events(ran, "finish"), check_events(ran, "base")
    assert [(e["data"]["passed"], e["data"]["failed"]) for e in finishes] == [(1, 2)]
    assert finishes[0]["data"]["failing"] == ["test_calc.py::test_sub", "test_calc.py::test_mul"]
    assert len(bases) == 1 and bases[0]["data"]["exit_code"] == 1  # test_mul fails there
    assert bases[0]["data"]["base"] == base
    warnings = [e for e in ran.events if e["level"] == "WARNING" and e["category"] == "test"]
    assert [w["message"].split(":")[0] for w in warnings] == ["step 2", "step 3"]
    assert "finish held" in warnings[0]["message"]
    assert warnings[0]["data"]["regressions"] == ["test_calc.py::test_sub"]
    assert "finish accepted with tests still failing" in warnings[1]["message"]
    finish_event = next(e for e in ran.events if e["message"].startswith("step 3: finish — "))
    assert "Tests still failing at finish" in finish_event["data"]["summary"]
    # The tree was unchanged between the finishes: the tests ran once, the base once.
    assert len(finishes) == 1
    assert list(area.iterdir()) == []  # the base checkout is gone


def test_a_test_failing_at_the_base_too_does_not_hold(repo: Path, area: Path) -> None:
    ran = run_agent(repo, [TOUCH_README, finish("wrote a README")])

    assert ran.outcome.status == "succeeded"
    assert ran.outcome.summary == "wrote a README"
    assert ran.outcome.steps == 2
    assert check_events(ran, "finish")[0]["data"]["failing"] == ["test_calc.py::test_mul"]
    assert len(check_events(ran, "base")) == 1  # test_mul checked there, and failed
    assert not [e for e in ran.events if e["level"] == "WARNING"]
    assert list(area.iterdir()) == []


def test_the_test_the_task_names_must_pass(repo: Path, area: Path) -> None:
    script = [TOUCH_README, finish("done"), FIX_MUL, finish("mul multiplies")]
    ran = run_agent(repo, script, task="make test_mul pass")

    assert ran.outcome.summary == "mul multiplies"  # fixed after the notice: nothing to say
    notice = ran.model.prompts[2][-1]["content"]
    assert notice.startswith(
        "Before you finish: the test the task names still fails: test_calc.py::test_mul.\n"
    )
    assert check_events(ran, "base") == []  # a named test need not have passed at the base
    assert [e["data"]["exit_code"] for e in check_events(ran, "finish")] == [1, 0]


def test_a_run_that_fixed_everything_finishes_at_once(repo: Path, area: Path) -> None:
    ran = run_agent(repo, [FIX_MUL, finish("mul multiplies")], task="fix the failing test")

    assert ran.outcome.status == "succeeded"
    assert ran.outcome.summary == "mul multiplies"
    assert ran.outcome.steps == 2
    [at_finish] = check_events(ran, "finish")
    assert (at_finish["data"]["passed"], at_finish["data"]["exit_code"]) == (3, 0)
    assert check_events(ran, "base") == []


def test_a_run_that_changed_nothing_runs_no_tests(repo: Path, area: Path) -> None:
    ran = run_agent(repo, [call("read_file", path="calc.py"), finish("calc.py has 3 functions")])

    assert ran.outcome.summary == "calc.py has 3 functions"
    assert [e for e in ran.events if e["category"] == "test"] == []


def test_a_run_that_gives_up_is_not_checked(repo: Path, area: Path) -> None:
    ran = run_agent(repo, [BREAK_SUB, call("finish", summary="cannot do it", success=False)])

    assert ran.outcome.status == "failed"
    assert [e for e in ran.events if e["category"] == "test"] == []


def test_calls_after_a_held_finish_wait_for_the_next_answer(repo: Path, area: Path) -> None:
    both = {"content": "", "calls": [
        ("edit_file", json.dumps({"path": "calc.py", "old": "a - b", "new": "a * b"})),
        ("finish", json.dumps({"summary": "done"})),
        ("write_file", json.dumps({"path": "notes.txt", "content": "x\n"})),
    ]}  # fmt: skip
    ran = run_agent(repo, [both, FIX_SUB, finish("sub is back")])

    answers = [m for m in ran.model.prompts[1] if m["role"] == "tool"]
    assert answers[1]["content"].startswith("Before you finish: 1 test that passed")
    assert answers[2]["content"].startswith("error: not run: it came after a finish that was")
    assert not (repo / "notes.txt").exists()
    assert ran.outcome.summary == "sub is back"
    assert ran.outcome.steps == 3


def test_no_test_command_no_check(tmp_path: Path, area: Path) -> None:
    repo = make_repo(tmp_path / "plain", {"notes.md": "hi\n"})
    ran = run_agent(repo, [call("write_file", path="notes.md", content="bye\n"), finish()])

    assert ran.outcome.summary == "done"
    assert [e for e in ran.events if e["category"] == "test"] == []


def test_a_whole_command_that_passed_at_the_base_and_fails_now(tmp_path: Path, area: Path) -> None:
    """A runner NEXUS reads no test ids from: the command as a whole is compared."""
    script = "#!/bin/sh\ngrep -q fine status.txt\n"
    repo = make_repo(tmp_path / "sh", {"check.sh": script, "status.txt": "fine\n"})
    steps = [
        call("run_tests", command="sh check.sh"),
        call("write_file", path="status.txt", content="bad\n"),
        finish("changed the status"),
        finish("changed the status"),
    ]
    ran = run_agent(repo, steps)

    notice = ran.model.prompts[3][-1]["content"]
    assert notice.startswith(
        "Before you finish: the test command `sh check.sh` passed at the start of this run and "
        "now fails (exit 1).\n"
    )
    assert ran.outcome.summary.endswith(
        "Tests still failing at finish: `sh check.sh` exits 1; it passed at the start of the run."
    )


def test_failing_test_ids_are_read_from_the_runners() -> None:
    pytest_out = (
        "=========================== short test summary info ============================\n"
        "FAILED tests/test_a.py::test_x - assert 1 == 2\n"
        "FAILED tests/test_a.py::TestK::test_p[a b] - ValueError: no\n"
        "ERROR tests/test_b.py\n"
        "ERROR: file or directory not found: nope.py\n"
        "2 failed, 1 error in 0.1s\n"
    )
    assert failing_tests(pytest_out) == [
        "tests/test_a.py::test_x", "tests/test_a.py::TestK::test_p[a b]", "tests/test_b.py",
    ]  # fmt: skip
    assert failing_tests("--- FAIL: TestAdd (0.00s)\n    --- FAIL: TestAdd/neg (0.00s)\n") == [
        "TestAdd", "TestAdd/neg",
    ]  # fmt: skip
    assert failing_tests("test calc::tests::adds ... FAILED\ntest x ... ok\n") == [
        "calc::tests::adds"
    ]
    assert failing_tests("2 passed in 0.1s\n") == []


def test_tests_a_task_names() -> None:
    assert named_tests("fix tests/test_calc.py::test_add and test_sub, see test_calc.py.") == [
        "tests/test_calc.py::test_add", "test_sub",
    ]  # fmt: skip
    assert named_tests("TestParse fails") == ["TestParse"]
    assert named_tests("fix the failing test") == []
    assert names_match("test_add", "tests/test_calc.py::test_add")
    assert names_match("test_add", "tests/test_calc.py::test_add[2-3]")
    assert names_match("TestK", "tests/test_a.py::TestK::test_p")
    assert names_match("TestAdd", "TestAdd/neg")
    assert names_match("tests/test_a.py::test_x", "tests/test_a.py")  # its file did not load
    assert not names_match("test_add", "tests/test_calc.py::test_add_more")
    assert is_pytest("python -m pytest -q") and is_pytest("pytest -x tests")
    assert not is_pytest("make test") and not is_pytest("pytest; rm -rf x")


def test_the_repair_notice_fires_in_a_real_run(tmp_path: Path, model) -> None:
    """`nexus run` end to end: the agent process, the run's sandbox (the base checked out in
    its private area, confined there), the journal and `nexus show`."""
    repo = make_repo(tmp_path / "proj", {"calc.py": CALC, "test_calc.py": TESTS})
    user_files = {p.name: p.read_bytes() for p in repo.iterdir() if p.is_file()}
    server = model([BREAK_SUB, finish("sub now multiplies"), finish("sub multiplies, as asked")])

    result = nexus(repo, "run", "make sub multiply", "--json", "--base-url", server.url)

    assert result.code == 0, result.stderr
    out = result.json()
    assert out["status"] == "succeeded"
    assert out["summary"] == (
        "sub multiplies, as asked\n\nTests still failing at finish: test_calc.py::test_sub."
    )
    assert out["steps"] == 3
    # The model was told once, in the answer to its first finish.
    told = server.requests[2]["messages"][-1]
    assert told["role"] == "tool"
    assert told["content"].startswith(
        "Before you finish: 1 test that passed at the start of this run now fails: "
        "test_calc.py::test_sub."
    )
    assert "FAILED test_calc.py::test_sub" in told["content"]
    assert "nexus: step 2: finish held: 1 test that passed" in result.stderr
    # The journal has the tests at finish, at the base (in the sandbox), the hold, the end.
    events = nexus(repo, "log", "--run", out["run_id"], "--json").lines()
    checks = [e for e in events if e["category"] == "test" and e["data"].get("check")]
    assert [e["data"]["check"] for e in checks] == ["finish", "base"]
    assert checks[1]["data"]["base"] == out["base"]
    assert checks[1]["data"]["passed"] == 2 and checks[1]["data"]["exit_code"] == 1
    assert "PASSED test_calc.py::test_sub" in checks[1]["data"]["output"]
    held = [e for e in events if e["level"] == "WARNING" and e["category"] == "test"]
    assert len(held) == 2 and "finish held" in held[0]["message"]
    shown = nexus(repo, "show", out["run_id"])
    assert "Tests still failing at finish: test_calc.py::test_sub." in shown.stdout
    # Nothing of the base checkout is left, and the user's tree is untouched.
    state = Path(sh(repo, "git", "rev-parse", "--git-common-dir").strip())
    state = state if state.is_absolute() else repo / state
    assert not list((state / "nexus").rglob("finish-base-*"))
    assert {p.name: p.read_bytes() for p in repo.iterdir() if p.is_file()} == user_files
    assert sh(repo, "git", "status", "--porcelain") == ""


def test_the_models_own_test_run_on_the_same_state_is_not_repeated(repo: Path, area: Path) -> None:
    script = [BREAK_SUB, call("run_tests"), finish("done"), FIX_SUB, FIX_MUL, call("run_tests"),
              finish("sub and mul work")]  # fmt: skip
    ran = run_agent(repo, script)

    assert check_events(ran, "finish") == []  # both finishes came right after run_tests
    assert len(check_events(ran, "base")) == 1
    assert ran.model.prompts[3][-1]["content"].startswith("Before you finish: 1 test that")
    assert ran.outcome.summary == "sub and mul work"
    reused = [e["message"] for e in ran.events if "as step" in e["message"]]
    assert [m.split(" — ")[0] for m in reused] == [
        "step 3: tests at finish: as step 2 ran them: 1 passed, 2 failed (exit 1)",
        "step 7: tests at finish: as step 6 ran them: 3 passed, 0 failed (exit 0)",
    ]
