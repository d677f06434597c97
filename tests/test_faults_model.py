"""Model faults: every limit holds while a call is in flight, and odd answers are retried."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import agent_pid, make_repo, nexus, start_nexus
from scripted_model import call, hang, raw_body, raw_call
from test_run_cancel import pid_gone, wait_for


def test_wall_time_holds_while_the_model_never_answers(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    server = model([hang(), hang(), hang(), hang(), hang()])

    started = time.monotonic()
    result = nexus(repo, "run", "do it", "--json", "--base-url", server.url, "--wall-time", "3")
    took = time.monotonic() - started

    assert result.code == 1, result.stderr
    out = result.json()
    assert out["status"] == "failed"
    assert "time limit reached (3 s)" in out["summary"]
    assert "stopped by NEXUS" not in out["summary"]  # the agent kept its limit itself
    assert took < 20, f"a 3 s run took {took:.1f} s"
    assert len(server.requests) == 1  # no retry after time ran out


def test_a_killed_host_stops_an_agent_waiting_on_the_model(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    server = model([hang()])
    proc = start_nexus(repo, "run", "do it", "--json", "--base-url", server.url)
    pid = agent_pid(repo)
    wait_for(lambda: len(server.requests) == 1, "the model call")

    proc.kill()
    proc.wait(timeout=30)

    wait_for(lambda: pid_gone(pid), "the orphaned agent to stop", timeout=10)
    assert nexus(repo, "runs", "--json").json()[0]["status"] == "interrupted"


def test_a_200_answer_that_is_not_json_is_retried(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    server = model([raw_body("<html>bad gateway</html>"), call("finish", summary="done")])

    result = nexus(repo, "run", "do it", "--json", "--base-url", server.url)

    assert result.code == 0, result.stderr
    assert result.json()["status"] == "succeeded"
    warnings = nexus(repo, "log", "--level", "WARNING", "--json").lines()
    assert any("not JSON" in e["message"] and server.url in e["message"] for e in warnings)


def test_an_endpoint_that_only_answers_non_json_names_itself(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    server = model([raw_body("oops")] * 6)

    result = nexus(repo, "run", "do it", "--json", "--base-url", server.url)

    assert result.code == 1
    error = result.json()["summary"]
    assert "not JSON" in error and server.url in error
    assert "crashed" not in error


def test_finish_with_unreadable_arguments_is_not_a_success(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    server = model([raw_call("finish", '{"summary": "done", "success": fal')] * 5)

    result = nexus(repo, "run", "do it", "--json", "--base-url", server.url)

    assert result.code == 1
    out = result.json()
    assert out["status"] == "failed"
    assert "finish" in out["summary"] and "5 times" in out["summary"]
    assert len(server.requests) == 5  # each unreadable finish was told so and asked again
    told = server.requests[1]["messages"][-1]["content"]
    assert told.startswith("error: finish:")
