"""The agent loop's rules, each seen through a real `nexus run` against the scripted model."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest
from conftest import agent_pid, make_repo, nexus, sh
from scripted_model import call, http_error, raw_call, refuse_tools, say, text_call


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


def test_unknown_tool_is_an_observation_not_a_crash(repo: Path, model) -> None:
    server = model([call("fly_to_moon", speed=3), call("finish", summary="gave up flying")])
    result, out = run(repo, server)
    assert result.code == 0, result.stderr
    seen = tool_messages(server.requests[1])[-1]["content"]
    assert seen.startswith("error:") and "fly_to_moon" in seen and "read_file" in seen


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


def test_model_words_are_the_rationale(repo: Path, model) -> None:
    server = model(
        [
            call(
                "write_file",
                "A greeting file makes the demo friendlier.",
                path="g.txt",
                content="hi\n",
            ),
            call("finish", summary="wrote g.txt"),
        ]
    )
    result, out = run(repo, server)
    body = sh(repo, "git", "log", "-1", "--format=%B", out["branch"])
    assert body.startswith("write_file: write g.txt\n\nA greeting file makes the demo friendlier.")
    tool_events = [e for e in events(repo, out["run_id"]) if e["data"].get("tool") == "write_file"]
    assert tool_events[0]["data"]["rationale"] == "A greeting file makes the demo friendlier."


def test_step_limit_fails_the_run(repo: Path, model) -> None:
    server = model([call("list_files") for _ in range(5)])
    result, out = run(repo, server, "--max-steps", "2")
    assert result.code == 1
    assert out["status"] == "failed" and "step limit" in out["summary"]
    assert len(server.requests) == 2  # no model call once the steps are spent


def test_token_limit_fails_the_run(repo: Path, model) -> None:
    server = model([call("list_files"), call("list_files")])
    result, out = run(repo, server, "--max-tokens", "50")
    assert out["status"] == "failed" and "token limit" in out["summary"]
    assert len(server.requests) == 1


def test_wall_time_limit_stops_a_long_command(repo: Path, model) -> None:
    server = model([call("run_command", command="sleep 60"), call("finish", summary="never")])
    result, out = run(repo, server, "--wall-time", "2")
    assert out["status"] == "failed" and "time limit" in out["summary"]
    command = [e for e in events(repo, out["run_id"]) if e["category"] == "command"][0]
    assert command["data"]["timed_out"] is True


def test_repeated_failing_call_warns_then_stops(repo: Path, model) -> None:
    server = model([call("read_file", path="missing.py") for _ in range(6)])
    result, out = run(repo, server)
    assert out["status"] == "failed" and "5 times" in out["summary"]
    assert len(server.requests) == 5
    warned = [m for m in server.requests[3]["messages"] if "same failing call" in str(m["content"])]
    assert len(warned) == 1
    assert not any("same failing call" in str(m["content"]) for m in server.requests[2]["messages"])


def test_text_without_tool_call_gets_a_nudge(repo: Path, model) -> None:
    server = model([say("I think it is fine."), call("finish", summary="ok")])
    result, out = run(repo, server)
    assert out["status"] == "succeeded"
    assert "act through a tool" in server.requests[1]["messages"][-1]["content"]


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
