"""Stopping runs: Ctrl-C on `nexus run` cancels; a host killed outright leaves `interrupted`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from conftest import clean_env, live_processes, make_repo, nexus, nexus_command, sh
from scripted_model import call

# Inside the sandbox's pid namespace `$$` means nothing out here: the command is found by
# its command line instead.
LONG_COMMAND = "touch started.flag; exec sleep 1207"


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll a condition with a deadline: waiting for an event, not papering over a race."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" in status.read_text()


def command_pid() -> int:
    found = live_processes("sleep 1207")
    return found[0] if found else 0


def start_long_run(repo: Path, server_url: str) -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen(
        [*nexus_command(), "run", "wait a while", "--json", "--base-url", server_url],
        cwd=repo,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    worktrees = repo / ".git" / "nexus" / "worktrees"
    wait_for(lambda: any(worktrees.glob("*/started.flag")), "the command to start")
    worktree = next(worktrees.glob("*/started.flag")).parent
    wait_for(lambda: command_pid() != 0, "the command's process")
    return proc, worktree


def test_ctrl_c_cancels_and_keeps_the_worktree(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    server = model([call("run_command", command=LONG_COMMAND), call("finish", summary="never")])
    proc, worktree = start_long_run(repo, server.url)
    pid = command_pid()

    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 1, stderr
    out = json.loads(stdout)
    assert out["status"] == "cancelled"
    wait_for(lambda: pid_gone(pid), "the command to be killed")
    assert worktree.is_dir()
    assert (
        sh(repo, "git", "branch", "--list", "--format=%(refname:short)", out["branch"]).strip()
        == out["branch"]
    )
    runs = nexus(repo, "runs", "--json").json()
    assert runs[0]["status"] == "cancelled"
    events = nexus(repo, "log", "--run", out["run_id"], "--json").lines()
    assert events[-1]["message"].startswith("run cancelled")


def test_killed_host_leaves_an_interrupted_run(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    server = model([call("run_command", command=LONG_COMMAND), call("finish", summary="never")])
    proc, worktree = start_long_run(repo, server.url)
    pid = command_pid()

    proc.kill()
    proc.communicate(timeout=30)

    private = repo / ".git" / "nexus" / "sandbox" / worktree.name
    assert private.is_dir()  # the host died before it could remove it
    runs = nexus(repo, "runs", "--json").json()
    assert runs[0]["status"] == "interrupted"
    assert not private.exists()  # removed once the run was found interrupted
    # The orphaned agent sees its host gone and stops its command.
    wait_for(lambda: pid_gone(pid), "the orphaned command to be stopped")
    assert worktree.is_dir()
