"""Guided mode's control logic, through a real `nexus run` against the scripted model.

The harness, not the model, decides what to run and when the run is done; these tests
check that a scripted model's answers only ever fill in what the harness asks for, and
that summaries come from tool results.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import make_repo, nexus, sh
from scripted_model import say

CALC = (
    "def add(a, b):\n"
    "    return a - b\n"
    "\n\n"
    "def nothing():\n"
    "    return None\n"
    "\n\n"
    "def empty():\n"
    "    return None\n"
)
TESTS = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"


def guided(repo: Path, server: Any, task: str, *extra: str) -> dict[str, Any]:
    result = nexus(repo, "run", task, "--json", "--base-url", server.url, *extra, NEXUS_GUIDED="1")
    assert result.stdout.strip(), result.stderr
    out = result.json()
    assert result.code == (0 if out["status"] == "succeeded" else 1)
    return out


def answer(**value: Any) -> dict[str, Any]:
    return say(json.dumps(value))


def prompt(request: dict[str, Any]) -> str:
    return request["messages"][-1]["content"]


def events(repo: Path, run_id: str) -> list[dict[str, Any]]:
    return nexus(repo, "log", "--run", run_id, "--json").lines()


def tool_steps(repo: Path, run_id: str) -> list[str]:
    """The tools of the run's steps, in order (commit events name a tool too; they are left out)."""
    return [e["data"]["tool"] for e in events(repo, run_id) if "arguments" in e["data"]]


def assert_guided_request(request: dict[str, Any]) -> dict[str, Any]:
    """Only system and user messages with string content, a schema, and no tools."""
    assert "tools" not in request and "tool_choice" not in request
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert all(isinstance(m["content"], str) for m in request["messages"])
    assert request["response_format"]["type"] == "json_object"
    assert request["temperature"] == 0
    return request["response_format"]["schema"]


def test_create_file_is_done_when_it_runs_without_any_finish(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"README.md": "demo\n"})
    server = model([answer(content="print('hello from guided')")])

    result = nexus(
        repo, "run", "create hello.py that prints a greeting", "--json",
        "--base-url", server.url, "--guided",
    )  # fmt: skip

    out = result.json()
    assert result.code == 0, result.stderr
    assert out["status"] == "succeeded"
    assert out["summary"] == (
        "created hello.py; `python3 hello.py` exited 0, printing: hello from guided"
    )
    schema = assert_guided_request(server.requests[0])
    assert schema["required"] == ["content"]
    assert "hello.py" in prompt(server.requests[0])
    assert len(server.requests) == 1
    content = sh(repo, "git", "show", f"{out['branch']}:hello.py")
    assert content == "print('hello from guided')\n"
    ran = subprocess.run([sys.executable, "-c", content], capture_output=True, text=True)
    assert ran.stdout == "hello from guided\n"
    message = sh(repo, "git", "log", "-1", "--format=%B", out["branch"])
    assert message.startswith("write_file: write hello.py\n\nguided: write hello.py")
    assert tool_steps(repo, out["run_id"]) == ["write_file", "run_command"]


def test_crashing_file_is_retried_with_its_error_then_fails(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"README.md": "demo\n"})
    server = model(
        [
            answer(content="import no_such_module_xyz"),
            answer(content="print(1 / 0)"),
            answer(content="raise ValueError('third try')"),
            answer(content="print('a fourth answer is never asked for')"),
        ]
    )

    out = guided(repo, server, "write tool.py that prints the date")

    assert out["status"] == "failed"
    assert "tool.py did not work after 3 tries" in out["summary"]
    assert "ValueError: third try" in out["summary"]
    assert len(server.requests) == 3
    second, third = prompt(server.requests[1]), prompt(server.requests[2])
    assert "import no_such_module_xyz" in second and "ModuleNotFoundError" in second
    assert "ZeroDivisionError" in third and "no_such_module_xyz" not in third
    assert tool_steps(repo, out["run_id"]) == ["write_file", "run_command"] * 3


def calc_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "proj", {"calc.py": CALC, "test_calc.py": TESTS})


def test_fix_offers_the_real_lines_and_ends_on_the_test_counts(tmp_path: Path, model) -> None:
    repo = calc_repo(tmp_path)
    server = model([answer(line="    return a - b", new="return a + b")])

    out = guided(repo, server, "fix the failing test")

    assert out["status"] == "succeeded", out["summary"]
    assert out["summary"] == (
        "fixed calc.py: `return a - b` -> `return a + b`; tests: 1 passed, 0 failed"
    )
    schema = assert_guided_request(server.requests[0])
    # Lines found more than once (and blank ones) are left out: an edit of them is ambiguous.
    offered = schema["properties"]["line"]["enum"]
    assert offered == ["def add(a, b):", "    return a - b", "def nothing():", "def empty():"]
    assert "assert add(2, 3) == 5" in prompt(server.requests[0])  # the failing output
    assert "def nothing():" in prompt(server.requests[0])  # the file's text
    fixed = sh(repo, "git", "show", f"{out['branch']}:calc.py")
    assert fixed == CALC.replace("a - b", "a + b")
    assert tool_steps(repo, out["run_id"]) == ["run_tests", "read_file", "edit_file", "run_tests"]


def worktree_file(repo: Path, branch: str, name: str) -> str:
    listing = sh(repo, "git", "worktree", "list", "--porcelain").split("\n\n")
    entry = next(e for e in listing if f"branch refs/heads/{branch}" in e)
    return (Path(entry.splitlines()[0].removeprefix("worktree ")) / name).read_text()


def test_fix_that_does_not_pass_is_reverted_then_fails(tmp_path: Path, model) -> None:
    repo = calc_repo(tmp_path)
    server = model(
        [
            answer(line="    return a - b", new="return a * b"),
            answer(line="    return a - b", new="return b - a"),
            answer(line="def add(a, b):", new="def add(a, b, c=0):"),
        ]
    )

    out = guided(repo, server, "fix the bug in calc.py")

    assert out["status"] == "failed"
    assert out["summary"].startswith(
        "the tests still fail after 3 tries to fix calc.py: tests: 0 passed, 1 failed"
    )
    retry = prompt(server.requests[1])
    assert "replaced `return a - b` with `return a * b`" in retry and "assert 6 == 5" in retry
    assert sh(repo, "git", "show", f"{out['branch']}:calc.py") == CALC
    assert worktree_file(repo, out["branch"], "calc.py") == CALC
    steps = tool_steps(repo, out["run_id"])
    assert steps == ["run_tests", "read_file"] + ["edit_file", "run_tests", "write_file"] * 3


def test_same_answer_is_not_run_again_and_a_third_stops_the_run(tmp_path: Path, model) -> None:
    repo = calc_repo(tmp_path)
    same = answer(line="    return a - b", new="return a * b")
    server = model([same, same, same, answer(line="    return a - b", new="return a + b")])

    out = guided(repo, server, "fix the failing test")

    assert out["status"] == "failed"
    assert "same fix answer 3 times in a row" in out["summary"]
    assert len(server.requests) == 3
    assert "same answer last time" in prompt(server.requests[2])
    assert "same answer last time" not in prompt(server.requests[1])
    assert tool_steps(repo, out["run_id"]).count("edit_file") == 1
    assert sh(repo, "git", "show", f"{out['branch']}:calc.py") == CALC


def test_run_tests_and_report_never_asks_the_model(tmp_path: Path, model) -> None:
    tests = TESTS + "\n\ndef test_also():\n    assert add(1, 1) == 0\n"
    repo = make_repo(tmp_path / "proj", {"calc.py": CALC, "test_calc.py": tests})
    server = model([answer(summary="all 12 tests passed")])

    out = guided(repo, server, "run the tests and report the result")

    assert out["status"] == "succeeded"
    assert out["summary"].startswith("tests: 1 passed, 1 failed (exit 1)")
    assert "12" not in out["summary"]
    assert server.requests == []
    assert tool_steps(repo, out["run_id"]) == ["run_tests"]


def test_list_files_answers_with_the_listing(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"a.py": "", "b.txt": "", "src/c.py": ""})
    server = model([])

    everything = guided(repo, server, "list the files in this project")
    python = guided(repo, server, "list the *.py files")

    assert everything["summary"] == "3 files\na.py\nb.txt\nsrc/c.py"
    assert python["summary"] == "2 files\na.py\nsrc/c.py"
    assert everything["status"] == python["status"] == "succeeded"
    assert server.requests == []


def test_explain_finds_the_definition_and_returns_the_explanation(tmp_path: Path, model) -> None:
    repo = calc_repo(tmp_path)
    words = "add() subtracts b from a, although its name says it adds."
    server = model([say("Sure! add is a function."), answer(explanation=words)])

    out = guided(repo, server, "explain what the function add() does")

    assert out["status"] == "succeeded"
    assert out["summary"] == words
    assert "def add(a, b):" in prompt(server.requests[0])
    assert "not the JSON object asked for" in prompt(server.requests[1])
    assert tool_steps(repo, out["run_id"]) == ["search", "read_file"]


def test_generic_task_marks_the_model_claim_and_checks_it(tmp_path: Path, model) -> None:
    repo = calc_repo(tmp_path)
    edit = {
        "path": "calc.py",
        "old": "return None\n\n\ndef empty",
        "new": "return 0\n\n\ndef empty",
    }
    server = model(
        [
            answer(tool="read_file", arguments={"path": "calc.py"}),
            answer(tool="edit_file", arguments=edit),
            answer(tool="run_tests", arguments={}),
            answer(tool="finish", arguments={"summary": "all tests pass", "success": True}),
        ]
    )

    out = guided(repo, server, "make nothing() return zero")

    branches = assert_guided_request(server.requests[0])["oneOf"]
    by_tool = {b["properties"]["tool"]["enum"][0]: b for b in branches}
    assert "finish" in by_tool and "run_command" in by_tool
    read_paths = by_tool["read_file"]["properties"]["arguments"]["properties"]["path"]["enum"]
    assert read_paths == ["calc.py", "test_calc.py"]
    # Each prompt carries the last step's result only, not the history.
    assert "read_file:" in prompt(server.requests[1])
    assert "edit_file:" in prompt(server.requests[2]) and "read_file:" not in prompt(
        server.requests[2]
    )
    # The model says the tests pass; the run it asked for says otherwise.
    assert out["status"] == "failed"
    assert out["summary"] == (
        "changed calc.py; tests: 0 passed, 1 failed; the model says: all tests pass"
    )


def test_generic_finish_without_any_step_is_not_a_success(tmp_path: Path, model) -> None:
    repo = calc_repo(tmp_path)
    server = model([answer(tool="finish", arguments={"summary": "done; all tests pass"})])

    out = guided(repo, server, "tidy up the project")

    assert out["status"] == "failed"
    assert out["summary"] == (
        "the model finished without taking a single step; the model says: done; all tests pass"
    )
    assert tool_steps(repo, out["run_id"]) == []


def test_step_limit_holds_in_guided_mode(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"README.md": "demo\n"})
    server = model([answer(content="print('hi')")])

    out = guided(repo, server, "create hi.py that says hi", "--max-steps", "1")

    assert out["status"] == "failed" and "step limit reached (1 steps)" in out["summary"]
    assert tool_steps(repo, out["run_id"]) == ["write_file"]


def test_endpoint_without_schema_in_json_object_gets_json_schema(tmp_path: Path, model) -> None:
    """llama.cpp takes a schema inside json_object; OpenAI-style APIs refuse it and want
    json_schema. The refusal switches the format once, for the rest of the run."""
    repo = calc_repo(tmp_path)
    words = "add() subtracts."

    def openai_style(body: dict[str, Any]) -> dict[str, Any]:
        if body["response_format"]["type"] == "json_object":
            return {"status": 400, "error": "Unrecognized request argument: schema", "again": True}
        return answer(explanation=words)

    server = model([openai_style])
    out = guided(repo, server, "explain what the function add() does")

    assert out["status"] == "succeeded" and out["summary"] == words
    formats = [r["response_format"]["type"] for r in server.requests]
    assert formats == ["json_object", "json_schema"]
    schema = server.requests[1]["response_format"]["json_schema"]["schema"]
    assert "explanation" in schema["properties"]


def test_suspects_never_follow_links_or_leave_the_worktree(tmp_path: Path) -> None:
    from nexus_ls.agent.guided_plans import suspects

    root = tmp_path / "wt"
    root.mkdir()
    (root / "calc.py").write_text("x = 1\n")
    secret = tmp_path / "secret_test.py"
    secret.write_text("import calc\n")
    (root / "test_link.py").symlink_to(secret)
    output = "FAILED test_link.py::t\nFAILED ../secret_test.py::t\ncalc.py:1: AssertionError\n"
    assert suspects(root, output) == ["calc.py"]
