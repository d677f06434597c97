"""Guided mode end to end: a real `nexus run` against the scripted model over HTTP.

Only what needs the real process and endpoint is here: the requests guided mode sends (no
tools, string messages, the answer's schema in `response_format`), the json_schema fallback,
an answer that is not JSON as an endpoint sends it, and the run's branch and `nexus log`.
The plans' logic is tested in-process in test_guided_plans.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import make_repo, nexus, sh
from scripted_model import say

from nexus_ls.agent.guided.prompts import text_schema

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
    assert isinstance(request["temperature"], (int, float))
    return request["response_format"]["schema"]


def test_create_file_is_done_when_it_runs_without_any_finish(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"README.md": "demo\n"})
    server = model([answer(content="print(1 / 0)"), answer(content="print('hello from guided')")])

    result = nexus(
        repo, "run", "create hello.py that prints a greeting", "--json",
        "--base-url", server.url, "--guided",
    )  # fmt: skip

    out = result.json()
    assert result.code == 0, result.stderr
    assert out["status"] == "succeeded"
    assert out["summary"] == (
        "created hello.py with the model's own answer, candidate 2 of 2 tried (temperature "
        "0.8, seed 1); `python3 hello.py` exited 0, printing: hello from guided"
    )
    schema = assert_guided_request(server.requests[0])
    assert schema["required"] == ["content"]
    assert "hello.py" in prompt(server.requests[0])
    # The second candidate is sampled, with a seed of its own, and told what failed.
    assert len(server.requests) == 2 and "seed" not in server.requests[0]
    assert server.requests[1]["temperature"] == 0.8 and server.requests[1]["seed"] == 1
    assert "ZeroDivisionError" in prompt(server.requests[1])
    content = sh(repo, "git", "show", f"{out['branch']}:hello.py")
    assert content == "print('hello from guided')\n"
    ran = subprocess.run([sys.executable, "-c", content], capture_output=True, text=True)
    assert ran.stdout == "hello from guided\n"
    message = sh(repo, "git", "log", "-1", "--format=%B", out["branch"])
    assert message.startswith("create hello.py\n\nguided: write hello.py")
    steps = tool_steps(repo, out["run_id"])
    assert steps == ["write_file", "run_command", "run_command", "write_file", "run_command"]


def calc_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "proj", {"calc.py": CALC, "test_calc.py": TESTS})


def test_fix_sends_the_real_lines_and_commits_the_fix_on_the_branch(tmp_path: Path, model) -> None:
    """The tests run in the run's sandbox; the lines offered travel in the request's schema."""
    repo = calc_repo(tmp_path)
    server = model([answer(line="    return a - b", new="return a + b")])

    out = guided(repo, server, "fix the failing test")

    assert out["status"] == "succeeded", out["summary"]
    assert out["summary"] == (
        "fixed calc.py with the model's own answer, candidate 1 of 1 tried (greedy): "
        "`return a - b` -> `return a + b`; tests: 1 passed, 0 failed"
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


def test_an_answer_that_is_not_json_is_asked_again(tmp_path: Path, model) -> None:
    """An endpoint may ignore the schema and send prose: the run asks once more, with a note."""
    repo = calc_repo(tmp_path)
    words = "add() subtracts b from a, although its name says it adds."
    server = model([say("Sure! add is a function."), answer(explanation=words)])

    out = guided(repo, server, "explain what the function add() does")

    assert out["status"] == "succeeded"
    assert out["summary"] == words
    assert [assert_guided_request(r) for r in server.requests] == [text_schema("explanation")] * 2
    assert "def add(a, b):" in prompt(server.requests[0])
    assert "not the JSON object asked for" in prompt(server.requests[1])
    assert tool_steps(repo, out["run_id"]) == ["search", "read_file"]


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
