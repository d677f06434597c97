"""Shared fixtures: real temp git repositories, the scripted model server, the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# Tests press Ctrl-C on the processes they start. A background job of a non-interactive
# shell starts with SIGINT ignored, and every child would inherit that (Python installs its
# handler only where SIGINT is not ignored): handled here, children start with the default.
signal.signal(signal.SIGINT, signal.default_int_handler)

from scripted_model import ScriptedModel, Step  # noqa: E402

IDENTITY = {
    "GIT_AUTHOR_NAME": "Test User",
    "GIT_AUTHOR_EMAIL": "user@example.com",
    "GIT_COMMITTER_NAME": "Test User",
    "GIT_COMMITTER_EMAIL": "user@example.com",
}


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a NEXUS subprocess: no model settings leak in from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NEXUS_"))}
    env.update(IDENTITY)
    env.update(extra)
    return env


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(
        args, cwd=cwd, env=clean_env(), check=True, capture_output=True, text=True
    ).stdout


def make_repo(root: Path, files: dict[str, str | bytes], commit: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    sh(root, "git", "init", "-q", "-b", "main")
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    if commit and files:
        sh(root, "git", "add", "-A")
        sh(root, "git", "commit", "-q", "-m", "initial")
    return root


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def nexus_command() -> list[str]:
    exe = shutil.which("nexus")
    return [exe] if exe else [sys.executable, "-m", "nexus_ls.cli"]


def nexus(cwd: Path, *args: str, timeout: float = 120, **env: str) -> Result:
    """Run the real `nexus` command line in a subprocess."""
    proc = subprocess.run(
        [*nexus_command(), *args],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def start_nexus(cwd: Path, *args: str) -> subprocess.Popen[str]:
    """The real `nexus` command line, left running (to be killed, say); output discarded."""
    return subprocess.Popen(
        [*nexus_command(), *args],
        cwd=cwd,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def live_processes(marker: str) -> list[int]:
    """Pids of live processes whose command line holds `marker` (a command in a sandbox has
    another pid inside its namespace, so it is found by what it runs)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if entry.isdigit() and marker.encode() in cmdline:
            found.append(int(entry))
    return found


def agent_pid(repo: Path, timeout: float = 20.0) -> int:
    """The pid of the newest run's agent, from its `agent started` event (the host journals
    it just after the agent sends it, so it is waited for)."""
    journal = Path(sh(repo, "git", "rev-parse", "--git-common-dir").strip())
    if not journal.is_absolute():
        journal = repo / journal
    path = journal / "nexus" / "journal.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            for line in reversed(path.read_text().splitlines()):
                event = json.loads(line)
                if event["category"] == "agent" and "pid" in event.get("data", {}):
                    return int(event["data"]["pid"])
        time.sleep(0.05)
    raise AssertionError("no agent started event in the journal")


@pytest.fixture
def model() -> Iterator[Any]:
    """Start scripted model servers: `model([steps...])` returns a running ScriptedModel."""
    servers: list[ScriptedModel] = []

    def start(script: list[Step], **kwargs: Any) -> ScriptedModel:
        server = ScriptedModel(script, **kwargs).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


# The hostile-model tests' fixtures; `hostile` itself builds on this module, hence the
# imports inside.
@pytest.fixture
def machine(tmp_path: Path) -> Any:
    """The user's side of the machine: a repository with work in progress, a home with a key."""
    from hostile import user_machine

    return user_machine(tmp_path)


@pytest.fixture
def loopback() -> Iterator[Any]:
    """A TCP listener on loopback that counts connections (no command may reach it)."""
    from hostile import Listener

    server = Listener()
    yield server
    server.close()
