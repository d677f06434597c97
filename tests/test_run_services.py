"""Services and deploy through real `nexus run`s against the scripted model: a web server
started in the run's sandbox, found ready, reached by a later command, out of the host's
reach, and gone once the run ends (also when its agent is killed); the project's deploy
command run only once the user approved it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import agent_pid, clean_env, live_processes, make_repo, nexus, nexus_command, sh
from hostile import hostile_run
from polling import alive, answers, free_port, wait_until
from scripted_model import call, hang, raw_call

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/ns/net"), reason="needs Linux")

PAGE = "<p>hello from the service</p>\n"


def start_web(port: int) -> dict[str, Any]:
    arguments = {
        "name": "web",
        "command": f"python3 -m http.server {port} --bind 127.0.0.1",
        "ready": f"http://127.0.0.1:{port}/",
    }
    why = "I start the web server and wait until it answers."
    return raw_call("start_service", json.dumps(arguments), why)


def looking_from_the_host(port: int, seen: dict[str, Any], then: dict[str, Any]) -> Callable:
    """A model step that, while the run goes on (its service started), notes what the host
    sees of the service, then answers `then`."""

    def step(body: dict[str, Any]) -> dict[str, Any]:
        seen["host_reaches"] = answers(port, "/index.html")
        seen["processes"] = live_processes(f"http.server {port}")
        return then

    return step


def tool_results(server: Any) -> list[str]:
    return [m["content"] for m in server.requests[-1]["messages"] if m["role"] == "tool"]


def service_event(repo: Path) -> dict[str, Any]:
    journal = repo / ".git" / "nexus" / "journal.jsonl"
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    return next(e for e in events if e["message"].startswith("step 1: start_service"))


def serve_and_fetch(tmp_path: Path, model: Any, *flags: str) -> tuple[Path, int, dict, Any, Any]:
    """A real run that starts a web service, fetches its page with a later command (the
    host looking on meanwhile) and finishes: (repo, port, what the host saw, the model
    server, the run's result)."""
    repo = make_repo(tmp_path / "proj", {"index.html": PAGE})
    port, seen = free_port(), {}
    fetch = f"curl -s http://127.0.0.1:{port}/index.html"
    server = model(
        [
            start_web(port),
            looking_from_the_host(port, seen, call("run_command", command=fetch)),
            call("finish", summary="the page is served", success=True),
        ]
    )
    result = nexus(repo, "run", "serve the page and check it", "--json", "--base-url",
                   server.url, *flags)  # fmt: skip
    assert result.code == 0, result.stderr
    return repo, port, seen, server, result


def test_a_service_is_ready_reached_by_a_later_command_private_and_gone_after_the_run(
    tmp_path: Path, model
) -> None:
    repo, port, seen, server, result = serve_and_fetch(tmp_path, model)
    started, fetched = tool_results(server)
    assert started.startswith("service web is ready after"), started
    assert f"http://127.0.0.1:{port}/ answered 200" in started
    assert fetched.startswith("exit code 0") and PAGE.strip() in fetched, fetched
    assert seen["processes"], "the service was not running while the run went on"
    assert seen["host_reaches"] is False  # the run's loopback is its own
    event = service_event(repo)
    assert event["data"]["details"]["state"] == "ready"
    assert event["data"]["details"]["sandboxed"] is True
    # Gone after the run: no process of it left, its pid free, its logs removed with the
    # run's private state.
    assert not live_processes(f"http.server {port}")
    assert not alive(event["data"]["details"]["pid"])
    run_id = result.json()["run_id"]
    assert not (repo / ".git" / "nexus" / "sandbox" / run_id).exists()


def test_with_the_network_on_a_service_is_on_the_hosts_loopback_until_the_run_ends(
    tmp_path: Path, model
) -> None:
    _, port, seen, server, _ = serve_and_fetch(tmp_path, model, "--network", "on")
    assert PAGE.strip() in tool_results(server)[1]
    assert seen["host_reaches"] is True  # as the docs say: the host's loopback
    assert not answers(port, "/index.html")  # and gone with the run
    assert not live_processes(f"http.server {port}")


def test_a_service_dies_with_its_agent(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"index.html": PAGE})
    port = free_port()
    server = model([start_web(port), hang()])
    host = subprocess.Popen(
        [*nexus_command(), "run", "serve", "--base-url", server.url],
        cwd=repo,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: len(server.requests) >= 2), "the service never got ready"
        assert live_processes(f"http.server {port}")
        os.kill(agent_pid(repo), signal.SIGKILL)
        assert wait_until(lambda: not live_processes(f"http.server {port}"))
        host.wait(timeout=60)
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()


def deploying(repo: Path, model, *flags: str) -> tuple[Any, Any]:
    server = model(
        [
            call("deploy", why="The fix is in; I deploy it.", reason="the fix is ready"),
            call("finish", summary="tried to deploy"),
        ]
    )
    result = nexus(repo, "run", "deploy the app", "--json", "--base-url", server.url, *flags)
    assert result.code == 0, result.stderr
    return result, server


def test_deploy_runs_the_projects_command_only_after_an_approval(tmp_path: Path, model) -> None:
    policy = 'deploy = "echo shipped > deployed.txt"\n'
    repo = make_repo(tmp_path / "proj", {".nexus/policy.toml": policy, "app.py": "x = 1\n"})
    refused, server = deploying(repo, model)  # no terminal, no --yes: nobody approves
    told = tool_results(server)[0]
    assert told.startswith(
        "error: not run: it needs the user's approval (deploy: the fix is ready; "
        "this run changed no files)"
    )
    branch = refused.json()["branch"]
    assert sh(repo, "git", "ls-tree", "--name-only", branch).split() == [".nexus", "app.py"]

    approved, server = deploying(repo, model, "--yes")
    assert tool_results(server)[0].startswith("deploy: exit code 0")
    branch = approved.json()["branch"]
    assert sh(repo, "git", "show", f"{branch}:deployed.txt") == "shipped\n"
    assert not (repo / "deployed.txt").exists()  # in the run's worktree, not the user's


def test_deploy_needs_a_committed_setting(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"app.py": "x = 1\n"})
    # Uncommitted (as a model could have left it in an accepted run): not the project's.
    (repo / ".nexus").mkdir()
    (repo / ".nexus" / "policy.toml").write_text('deploy = "echo shipped > deployed.txt"\n')
    _, server = deploying(repo, model, "--yes")
    assert tool_results(server)[0].startswith("error: this project has no deploy command")


def test_a_hostile_service_is_confined_like_a_command(machine, model, loopback) -> None:  # type: ignore[no-untyped-def]
    """Through a real run, with the user's machine around it: nothing outside the worktree
    changes, no key is read, no listener of the host's is reached."""

    before = machine.snapshot()
    attack = (
        f"echo owned > {machine.root}/calc.py; cat {machine.home}/.ssh/id_ed25519; "
        'python3 -c "import socket; '
        f"socket.create_connection(('127.0.0.1', {loopback.port}), 3)\"; "
        "echo tried; exec sleep 600"
    )
    arguments = {"name": "evil", "command": attack, "ready": "tried"}
    steps = [
        raw_call("start_service", json.dumps(arguments)),
        raw_call("service_logs", json.dumps({"name": "evil"})),
    ]
    result, server, _ = hostile_run(machine, model, steps)
    assert result.code == 0, result.stderr
    started, logs = tool_results(server)
    assert started.startswith("service evil is ready"), started
    assert "Connection refused" in logs and machine.key_text.splitlines()[1] not in logs
    assert loopback.connections == 0
    assert machine.snapshot() == before
    assert not live_processes("echo tried; exec sleep 600")
