"""The agent end to end: a real `nexus run` against the scripted model over HTTP.

Only what needs the real process and endpoint is here: the messages and call ids the
endpoint gets, the text-mode fallback on a 400, retries, the endpoint's errors as the user
reads them, the wall-time limit on a real command, and the agent process dying. The loop's
own rules are tested in-process in test_agent_units.py and test_agent_loop.py.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest
from conftest import agent_pid, make_repo, nexus
from scripted_model import call, http_error, raw_call, refuse_tools, text_call


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "proj", {"hello.py": "print('hello')\n"})


def run(repo: Path, server, *extra: str, **env: str):
    result = nexus(repo, "run", "do the task", "--json", "--base-url", server.url, *extra, **env)
    return result, (result.json() if result.stdout.strip() else None)


def events(repo: Path, run_id: str) -> list[dict]:
    return nexus(repo, "log", "--run", run_id, "--json").lines()


def tool_messages(request: dict) -> list[dict]:
    return [m for m in request["messages"] if m["role"] == "tool"]


def test_malformed_arguments_reach_the_model_with_the_call_id(repo: Path, model) -> None:
    server = model([raw_call("read_file", '{"path": "hello.py"'), call("finish", summary="ok")])
    result, out = run(repo, server)
    assert out["status"] == "succeeded"
    request = server.requests[1]
    call_id = [m for m in request["messages"] if m["role"] == "assistant"][-1]["tool_calls"][0][
        "id"
    ]
    answer = tool_messages(request)[-1]
    assert answer["tool_call_id"] == call_id
    assert answer["content"].startswith("error:") and "JSON" in answer["content"]


def test_text_fallback_when_endpoint_refuses_tools(repo: Path, model) -> None:
    server = model(
        [
            refuse_tools(text_call("read_file", "I look at the file.", path="hello.py")),
            text_call("finish", "Done.", summary="read it"),
        ]
    )
    result, out = run(repo, server)
    assert result.code == 0, result.stderr
    assert out["summary"] == "read it"
    assert "tools" in server.requests[0] and "tools" not in server.requests[1]
    last = server.requests[-1]["messages"]
    assert "```json" in last[0]["content"]  # the tools are described in the system prompt
    assert last[-1]["role"] == "user" and "print('hello')" in last[-1]["content"]
    warnings = [e for e in events(repo, out["run_id"]) if "text tool calls" in e["message"]]
    assert len(warnings) == 1


def test_text_mode_by_setting(repo: Path, model) -> None:
    server = model([text_call("finish", summary="fine")])
    result, out = run(repo, server, "--tool-mode", "text")
    assert out["status"] == "succeeded"
    assert "tools" not in server.requests[0]


def test_wall_time_limit_stops_a_long_command(repo: Path, model) -> None:
    server = model([call("run_command", command="sleep 60"), call("finish", summary="never")])
    result, out = run(repo, server, "--wall-time", "2")
    assert out["status"] == "failed" and "time limit" in out["summary"]
    command = [e for e in events(repo, out["run_id"]) if e["category"] == "command"][0]
    assert command["data"]["details"]["timed_out"] is True


@pytest.mark.parametrize("status", [500, 429])
def test_transient_errors_are_retried(repo: Path, model, status: int) -> None:
    server = model([http_error(status), call("finish", summary="after retry")])
    result, out = run(repo, server)
    assert out["status"] == "succeeded" and out["summary"] == "after retry"
    retries = [e for e in events(repo, out["run_id"]) if "retry 1" in e["message"]]
    assert len(retries) == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_endpoint_is_one_clear_line(repo: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = nexus(repo, "run", "x", "--model", "m", "--base-url", url)
    assert result.code == 1
    assert "Traceback" not in result.stderr
    assert f"cannot reach the model endpoint at {url}" in result.stderr
    assert "--base-url" in result.stderr


def test_unknown_model_names_the_ones_available(repo: Path, model) -> None:
    server = model([call("finish", summary="x")], models=("coder-7b", "chat-1b"))
    result = nexus(repo, "run", "x", "--base-url", server.url, "--model", "nope")
    assert result.code == 1 and "Traceback" not in result.stderr
    assert "model 'nope' is not served" in result.stderr and "coder-7b" in result.stderr


def test_bad_api_key_says_what_to_set(repo: Path, model) -> None:
    server = model([call("finish", summary="x")], api_key="right-key-123")
    result = nexus(repo, "run", "x", "--base-url", server.url, OPENAI_API_KEY="wrong-key-456")
    assert result.code == 1 and "Traceback" not in result.stderr
    assert "rejected the API key" in result.stderr and "OPENAI_API_KEY" in result.stderr


def test_model_is_taken_from_the_endpoint_when_unset(repo: Path, model) -> None:
    server = model([call("finish", summary="x")], models=("only-model",))
    result, out = run(repo, server)
    assert out["status"] == "succeeded"
    assert server.requests[0]["model"] == "only-model"


def test_agent_process_death_fails_the_run_with_the_cause(repo: Path, model) -> None:
    # A command cannot reach the agent from its sandbox, so the test kills it from outside
    # while the agent waits for the model: a real crash of the agent.
    def kill_agent(body: dict) -> dict:
        os.kill(agent_pid(repo), signal.SIGKILL)
        return call("finish", summary="x")

    server = model([kill_agent])
    result, out = run(repo, server)
    assert result.code == 1
    assert out["status"] == "failed"
    assert "agent process died (killed by signal 9)" in out["summary"]
    ended = events(repo, out["run_id"])[-1]
    assert ended["level"] == "ERROR" and "killed by signal 9" in ended["message"]


def test_not_a_git_repository(tmp_path: Path) -> None:
    result = nexus(tmp_path, "run", "x", "--base-url", "http://127.0.0.1:9/v1")
    assert result.code == 2
    assert "git init" in result.stderr and "Traceback" not in result.stderr
