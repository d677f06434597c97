"""Guided mode's plans in-process: the harness, not the model, decides what runs and when
the run is done, and the summary comes from tool results.

Each test runs `GuidedAgent` on a real git repository with the real tools and step commits;
only the model is scripted. The request shapes sent to an endpoint are tested through a
real `nexus run` in test_guided.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from agent_harness import Ran, run_agent
from conftest import make_repo, sh
from inprocess_model import Step, answer
from scripted_model import say
from test_guided import CALC, TESTS

from nexus_ls.agent.guided import prompts as ask
from nexus_ls.agent.model import GREEDY, Sampling
from nexus_ls.config import Limits


@pytest.fixture(autouse=True)
def bare_pytest(monkeypatch: pytest.MonkeyPatch) -> None:
    """The projects' own test runs load no pytest plugins: they need none, and loading the
    ones installed for NEXUS's tests takes seconds a run (commands inherit this environment
    when, as here, there is no sandbox)."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.fixture
def calc(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "proj", {"calc.py": CALC, "test_calc.py": TESTS})


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "proj", {"README.md": "demo\n"})


def guided(repo: Path, script: list[Step], task: str, **kwargs: Any) -> Ran:
    return run_agent(repo, script, task, guided=True, **kwargs)


def prompt(ran: Ran, n: int) -> str:
    """The question of the model's `n`th call (guided calls are one system, one user message)."""
    shown = ran.model.prompts[n]
    assert [m["role"] for m in shown] == ["system", "user"]
    return shown[-1]["content"]


def tool_steps(ran: Ran) -> list[str]:
    """The tools of the run's steps, in order (commit events name a tool too; left out)."""
    return [e["data"]["tool"] for e in ran.events if "arguments" in e["data"]]


def subjects(repo: Path) -> list[str]:
    """The subjects of the repository's commits, oldest first."""
    return sh(repo, "git", "log", "--reverse", "--format=%s").splitlines()


def at_head(repo: Path, name: str) -> str:
    return sh(repo, "git", "show", f"HEAD:{name}")


def test_create_file_is_done_when_it_runs(empty: Path) -> None:
    ran = guided(empty, [answer(content="print('hello from guided')")], "create hello.py")

    assert ran.outcome.status == "succeeded"
    assert ran.outcome.summary == (
        "created hello.py with the model's own answer, candidate 1 of 1 tried (greedy); "
        "`python3 hello.py` exited 0, printing: hello from guided"
    )
    assert ran.model.schemas[0]["required"] == ["content"]
    assert ran.model.samplings == [GREEDY]
    assert "hello.py" in prompt(ran, 0) and len(ran.model.prompts) == 1
    assert at_head(empty, "hello.py") == "print('hello from guided')\n"
    message = sh(empty, "git", "log", "-1", "--format=%B")
    assert message.startswith("create hello.py\n\nguided: write hello.py")
    assert tool_steps(ran) == ["write_file", "run_command"]


def test_crashing_file_is_removed_before_the_next_candidate(empty: Path) -> None:
    script = [
        answer(content="import no_such_module_xyz"),
        answer(content="print(1 / 0)"),
        answer(content="raise ValueError('third try')"),
        answer(content="print('a fourth answer is never asked for')"),
    ]
    base = sh(empty, "git", "rev-parse", "HEAD").strip()
    ran = guided(empty, script, "write tool.py that prints the date", limits=Limits(candidates=3))

    assert ran.outcome.status == "failed"
    assert ran.outcome.summary == (
        "no candidate passed its check: tried 3 candidates (3 from the model, 0 generated); "
        "tool.py is not there"
    )
    # Greedy first, then a temperature and a seed of their own: different candidates.
    assert ran.model.samplings == [GREEDY, Sampling(0.8, 1), Sampling(0.8, 2)]
    second, third = prompt(ran, 1), prompt(ran, 2)
    assert "import no_such_module_xyz" in second and "ModuleNotFoundError" in second
    assert "ZeroDivisionError" in third and "no_such_module_xyz" not in third
    assert tool_steps(ran) == ["write_file", "run_command", "run_command"] * 3
    # Each try is committed, and so is its removal: the branch ends as its base.
    assert not (empty / "tool.py").exists()
    assert sh(empty, "git", "diff", base, "HEAD") == ""
    assert subjects(empty)[1:] == ["create tool.py", "run `rm -f -- tool.py`"] * 3


def test_fix_offers_the_real_lines_and_ends_on_the_test_counts(calc: Path) -> None:
    ran = guided(
        calc, [answer(line="    return a - b", new="return a + b")], "fix the failing test"
    )

    assert ran.outcome.status == "succeeded", ran.outcome.summary
    assert ran.outcome.summary == (
        "fixed calc.py with the model's own answer, candidate 1 of 1 tried (greedy): "
        "`return a - b` -> `return a + b`; tests: 1 passed, 0 failed"
    )
    # Lines found more than once (and blank ones) are left out: an edit of them is ambiguous.
    offered = ran.model.schemas[0]["properties"]["line"]["enum"]
    assert offered == ["def add(a, b):", "    return a - b", "def nothing():", "def empty():"]
    assert "assert add(2, 3) == 5" in prompt(ran, 0)  # the failing output
    assert "def nothing():" in prompt(ran, 0)  # the file's text
    fixed = CALC.replace("a - b", "a + b")  # reindented like the line it replaces
    assert (calc / "calc.py").read_text() == fixed and at_head(calc, "calc.py") == fixed
    assert tool_steps(ran) == ["run_tests", "read_file", "edit_file", "run_tests"]
    assert subjects(calc) == ["initial", "edit calc.py: lines 2-2"]


ZERO = "def add(a, b):\n    return 0\n"  # no one-token edit makes add(2, 3) == 5


def test_a_search_that_finds_nothing_leaves_the_branch_as_its_base(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "proj", {"calc.py": ZERO, "test_calc.py": TESTS})
    base = sh(repo, "git", "rev-parse", "HEAD").strip()
    script = [
        answer(line="    return 0", new="return a * b"),
        answer(line="    return 0", new="return b - a"),
    ]
    ran = guided(repo, script, "fix the bug in calc.py", limits=Limits(candidates=3))

    assert ran.outcome.status == "failed"
    assert ran.outcome.summary == (
        "no candidate passed its check: tried 3 candidates (2 from the model, 1 generated); "
        "calc.py is back as it was; tests: 0 passed, 1 failed"
    )
    # The model's, then a generated edit (0 off by one), then the model's next sample,
    # each put back before the next; the model was told what had failed.
    assert tool_steps(ran) == (
        ["run_tests", "read_file"] + ["edit_file", "run_tests", "write_file"] * 3
    )
    tried = [e["data"] for e in ran.events if "candidate" in e["data"]]
    assert [(t["source"], t["change"]["new"].strip(), t["passed"]) for t in tried] == [
        ("model", "return a * b", False),
        ("generated", "return 1", False),
        ("model", "return b - a", False),
    ]
    assert tried[1]["how"] == "`0` → `1` (off by one) on line 2"
    told = prompt(ran, 1)
    assert "`return 0` -> `return a * b`" in told and "`return 0` -> `return 1`" in told
    assert (repo / "calc.py").read_text() == ZERO
    assert sh(repo, "git", "diff", base, "HEAD") == ""


def test_a_candidate_given_again_is_not_checked_again(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "proj", {"calc.py": ZERO, "test_calc.py": TESTS})
    same = answer(line="    return 0", new="return a * b")
    ran = guided(repo, [same] * 16, "fix the failing test")

    assert ran.outcome.status == "failed"
    assert "tried 2 candidates (1 from the model, 1 generated)" in ran.outcome.summary
    assert tool_steps(ran).count("edit_file") == 2
    # Sixteen samples, each with a seed of its own, gave nothing new: the model is done.
    assert len(ran.model.samplings) == 16
    assert len({s.seed for s in ran.model.samplings}) == 16
    assert (repo / "calc.py").read_text() == ZERO


def test_run_tests_and_report_never_asks_the_model(tmp_path: Path) -> None:
    tests = TESTS + "\n\ndef test_also():\n    assert add(1, 1) == 0\n"
    repo = make_repo(tmp_path / "proj", {"calc.py": CALC, "test_calc.py": tests})
    ran = guided(
        repo, [answer(summary="all 12 tests passed")], "run the tests and report the result"
    )

    assert ran.outcome.status == "succeeded"
    assert ran.outcome.summary.startswith("tests: 1 passed, 1 failed (exit 1)")
    assert "12" not in ran.outcome.summary
    assert ran.model.prompts == []
    assert tool_steps(ran) == ["run_tests"]
    assert subjects(repo) == ["initial"]


def test_list_files_answers_with_the_listing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "proj", {"a.py": "", "b.txt": "", "src/c.py": ""})

    everything = guided(repo, [], "list the files in this project")
    python = guided(repo, [], "list the *.py files")

    assert everything.outcome.summary == "3 files\na.py\nb.txt\nsrc/c.py"
    assert python.outcome.summary == "2 files\na.py\nsrc/c.py"
    assert everything.outcome.status == python.outcome.status == "succeeded"
    assert everything.model.prompts == python.model.prompts == []


def test_explain_finds_the_definition_and_returns_the_explanation(calc: Path) -> None:
    words = "add() subtracts b from a, although its name says it adds."
    script = [say("Sure! add is a function."), answer(explanation=words)]
    ran = guided(calc, script, "explain what the function add() does")

    assert ran.outcome.status == "succeeded"
    assert ran.outcome.summary == words
    assert "def add(a, b):" in prompt(ran, 0)
    assert ask.NOT_JSON in prompt(ran, 1) and ask.NOT_JSON not in prompt(ran, 0)
    assert tool_steps(ran) == ["search", "read_file"]


def test_generic_task_marks_the_model_claim_and_checks_it(calc: Path) -> None:
    edit = {
        "path": "calc.py",
        "old": "return None\n\n\ndef empty",
        "new": "return 0\n\n\ndef empty",
    }
    script = [
        answer(tool="read_file", arguments={"path": "calc.py"}),
        answer(tool="edit_file", arguments=edit),
        answer(tool="run_tests", arguments={}),
        answer(tool="finish", arguments={"summary": "all tests pass", "success": True}),
    ]
    ran = guided(calc, script, "make nothing() return zero")

    by_tool = {b["properties"]["tool"]["enum"][0]: b for b in ran.model.schemas[0]["oneOf"]}
    assert "finish" in by_tool and "run_command" in by_tool
    read_paths = by_tool["read_file"]["properties"]["arguments"]["properties"]["path"]["enum"]
    assert read_paths == ["calc.py", "test_calc.py"]
    # Each prompt carries the last step's result only, not the history.
    assert "read_file:" in prompt(ran, 1)
    assert "edit_file:" in prompt(ran, 2) and "read_file:" not in prompt(ran, 2)
    assert "Files changed so far: calc.py" in prompt(ran, 2)
    # The model says the tests pass; the run it asked for says otherwise.
    assert ran.outcome.status == "failed"
    assert ran.outcome.summary == (
        "changed calc.py; tests: 0 passed, 1 failed; the model says: all tests pass"
    )
    assert "def nothing():\n    return 0\n" in at_head(calc, "calc.py")
    assert tool_steps(ran) == ["read_file", "edit_file", "run_tests"]


def test_generic_finish_without_any_step_is_not_a_success(calc: Path) -> None:
    script = [answer(tool="finish", arguments={"summary": "done; all tests pass"})]
    ran = guided(calc, script, "tidy up the project")

    assert ran.outcome.status == "failed"
    assert ran.outcome.summary == (
        "the model finished without taking a single step; the model says: done; all tests pass"
    )
    assert tool_steps(ran) == []
    assert subjects(calc) == ["initial"]


def test_step_limit_holds_in_guided_mode(empty: Path) -> None:
    ran = guided(empty, [answer(content="print('hi')")], "create hi.py", limits=Limits(max_steps=2))

    assert ran.outcome.status == "failed"
    # No try is begun that could not be put back within the limit.
    assert "the search stopped: 2 steps were left, and a try needs 3" in ran.outcome.summary
    assert tool_steps(ran) == [] and not (empty / "hi.py").exists()
