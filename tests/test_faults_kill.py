"""Fault injection: `kill -9` of the host (`nexus run`), of the agent and of `nexus-ls`,
each at a random point of a 20-step scripted run, 20 trials each.

After every trial: the journal parses line by line, every event the user was shown is in
it, the run's status is final and its head is its branch's tip, no process of the run is
alive, the user's tree is byte-identical, and a new run succeeds.

Run alone with `pytest -m faults`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import clean_env, live_processes, make_repo, nexus, nexus_command, sh
from raw_lsp import RawClient
from scripted_model import call
from test_run_cancel import pid_gone, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.slow]
TRIALS = 20
STEPS = 20
FINAL = {"succeeded", "failed", "cancelled", "interrupted"}


def script(marker: str) -> list[dict[str, Any]]:
    """20 steps that change files (each a commit), half of them sandboxed commands."""
    steps = []
    for i in range(STEPS):
        if i % 2:
            steps.append(call("write_file", path=f"out/w{i}.txt", content=f"step {i}\n"))
        else:
            command = f"sleep 0.05; echo {i} > out/c{i}.txt  # {marker}"
            steps.append(call("run_command", command=f"mkdir -p out; {command}"))
    return [*steps, call("finish", summary="all steps done")]


def user_tree(repo: Path) -> dict[str, bytes]:
    return {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }


@dataclass
class Workspace:
    repo: Path
    tree: dict[str, bytes]
    model: Callable[..., Any]
    rng: random.Random
    seen_runs: set[str] = field(default_factory=set)

    @property
    def journal(self) -> Path:
        return self.repo / ".git" / "nexus" / "journal.jsonl"

    def events(self) -> list[dict[str, Any]]:
        """Every line of the journal, each of which must parse."""
        if not self.journal.exists():
            return []
        lines = self.journal.read_bytes().split(b"\n")
        assert lines[-1] == b"", "the journal ends in a torn line"
        return [json.loads(line) for line in lines[:-1]]

    def new_run(self) -> dict[str, Any]:
        records = nexus(self.repo, "runs", "--json").json()
        (record,) = [r for r in records if r["id"] not in self.seen_runs]
        self.seen_runs.add(record["id"])
        return record

    def check(self, acknowledged: list[str], by: str, marker: str) -> None:
        """What must hold after any kill; `acknowledged` are what the user was shown
        (event ids, or messages when only those were printed)."""
        record = self.new_run()
        run_id = record["id"]
        events = self.events()
        ours = [e for e in events if e.get("run") == run_id]
        keys = {e["id"] for e in ours} | {e["message"] for e in ours}
        missing = [a for a in acknowledged if a not in keys]
        assert not missing, f"acknowledged events lost: {missing[:3]}"
        agent = [e["data"]["pid"] for e in ours if "pid" in (e.get("data") or {})]
        for pid in agent:
            wait_for(lambda pid=pid: pid_gone(pid), f"agent {pid} to stop", timeout=30)
        wait_for(lambda: not live_processes(marker), "the run's commands to stop", 30)
        record = next(r for r in nexus(self.repo, "runs", "--json").json() if r["id"] == run_id)
        assert record["status"] in FINAL, record
        tip = sh(self.repo, "git", "rev-parse", record["branch"]).strip()
        assert record["head"] == tip, (by, record)
        assert user_tree(self.repo) == self.tree, f"the user's tree changed ({by})"
        self.runs_again()

    def runs_again(self) -> None:
        server = self.model([call("finish", summary="still fine")])
        result = nexus(self.repo, "run", "check", "--json", "--base-url", server.url)
        assert result.code == 0, result.stderr
        self.seen_runs.add(result.json()["run_id"])


@pytest.fixture
def workspace(tmp_path: Path, model) -> Workspace:
    repo = make_repo(tmp_path / "proj", {"app.py": "x = 1\n", "README.md": "readme\n"})
    (repo / "app.py").write_text("x = 2  # the user's work in progress\n")
    (repo / "notes.txt").write_text("untracked notes\n")
    return Workspace(repo, user_tree(repo), model, random.Random(8))


def start_cli(ws: Workspace, marker: str) -> subprocess.Popen[str]:
    server = ws.model(script(marker))
    return subprocess.Popen(
        [*nexus_command(), "run", "twenty steps", "--base-url", server.url],
        cwd=ws.repo, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def shown(line: str) -> str:
    return line.rstrip("\n").removeprefix("nexus: ")


def test_kill_9_of_the_host_at_random_points(workspace: Workspace) -> None:
    for trial in range(TRIALS):
        marker = f"host-trial-{trial}"
        proc = start_cli(workspace, marker)
        assert proc.stderr is not None
        printed = []
        for _ in range(workspace.rng.randint(1, 3 * STEPS)):
            line = proc.stderr.readline()
            if not line:
                break
            printed.append(shown(line))
        proc.kill()
        proc.wait()
        # The last line read may be half of one; all before it were whole.
        workspace.check(printed[:-1], f"host trial {trial}", marker)


def kill_agent_after(ws: Workspace, proc: subprocess.Popen[str], count: int) -> None:
    """SIGKILL the new run's agent once the run has journaled `count` events."""
    seen: list[dict[str, Any]] = []

    def enough() -> bool:
        seen[:] = [e for e in ws.events() if e.get("run") not in ws.seen_runs]
        return len(seen) >= count or proc.poll() is not None

    wait_for(enough, "the run to get going", timeout=60)
    pids = [e["data"]["pid"] for e in seen if "pid" in (e.get("data") or {})]
    if pids:
        os.kill(pids[0], signal.SIGKILL)


def test_kill_9_of_the_agent_at_random_points(workspace: Workspace) -> None:
    for trial in range(TRIALS):
        marker = f"agent-trial-{trial}"
        proc = start_cli(workspace, marker)
        kill_agent_after(workspace, proc, workspace.rng.randint(1, 3 * STEPS))
        _, stderr = proc.communicate(timeout=60)
        printed = [shown(line) for line in stderr.splitlines()]
        workspace.check(printed, f"agent trial {trial}", marker)


def test_kill_9_of_the_language_server_at_random_points(workspace: Workspace) -> None:
    for trial in range(TRIALS):
        marker = f"server-trial-{trial}"
        server = workspace.model(script(marker))
        client = RawClient(workspace.repo)
        client.request(1, "initialize", {
            "processId": None, "rootUri": workspace.repo.as_uri(), "capabilities": {},
            "workspaceFolders": [{"uri": workspace.repo.as_uri(), "name": "proj"}],
            "initializationOptions": {"nexus": {"baseUrl": server.url}},
        })  # fmt: skip
        client.response(1)
        client.notify("initialized", {})
        run = {"command": "nexus.run", "arguments": [{"task": "twenty steps"}]}
        client.request(2, "workspace/executeCommand", run)
        received: list[str] = []
        at = workspace.rng.randint(1, 3 * STEPS)
        while len(received) < at:
            message = client.receive(timeout=60)
            if message.get("method") == "nexus/event":
                received.append(message["params"]["event"]["id"])
                if message["params"]["event"]["message"].startswith("run succeeded"):
                    break
            elif "method" in message and "id" in message:  # a request: answer it
                client.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
        client.proc.kill()
        client.close()
        workspace.check(received, f"server trial {trial}", marker)
