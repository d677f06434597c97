"""A hostile model's runs, and everything outside the worktree it must not have changed.

Shared by the confinement tests: a user's repository with committed, uncommitted and
untracked work, a home with a private key, and a snapshot of every place a run's
commands could reach.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import Result, make_repo, nexus
from helpers_git import RepoState, repo_state
from scripted_model import ScriptedModel, call

API_KEY = "sk-hostile-test-" + "0123456789abcdef" * 2
CALC = "def add(a, b):\n    return a - b\n"
TEST = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"


@dataclass
class Machine:
    """The user's side of the machine, as a run must leave it."""

    root: Path
    home: Path
    outside: Path  # a folder of the user's outside the repository
    key_text: str  # the contents of ~/.ssh/id_ed25519
    state: RepoState | None = None
    extra: dict[str, bytes] = field(default_factory=dict)

    @property
    def journal(self) -> Path:
        return self.root / ".git" / "nexus" / "journal.jsonl"

    def snapshot(self) -> dict[str, Any]:
        git = self.root / ".git"
        state = repo_state(self.root)
        # The run's own branch is the one ref a run may add.
        refs = "\n".join(
            line for line in state.refs.splitlines() if not line.startswith("refs/heads/nexus/")
        )
        return {
            "repo": dataclasses.replace(state, refs=refs),
            "config": (git / "config").read_bytes(),
            "hooks": sorted(p.name for p in (git / "hooks").iterdir()),
            "home": tree_digest(self.home),
            "outside": tree_digest(self.outside),
        }


def tree_digest(root: Path) -> dict[str, str]:
    """Every path under `root` with a digest of its bytes (or its link target)."""
    found: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = Path(folder, name)
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[rel] = "link:" + os.readlink(path)
            elif path.is_file():
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[rel] = "dir"
    return found


def user_machine(tmp_path: Path) -> Machine:
    root = make_repo(tmp_path / "proj", {"calc.py": CALC, "test_calc.py": TEST})
    (root / "calc.py").write_text(CALC + "# my uncommitted note\n")
    (root / "notes.txt").write_text("untracked work\n")
    home = tmp_path / "home"
    key_text = f"-----BEGIN OPENSSH PRIVATE KEY-----\nFAKE{secrets.token_hex(16)}\n"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text(key_text + "-----END OPENSSH PRIVATE KEY-----\n")
    (home / ".gitconfig").write_text("[user]\n\tname = The User\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "keep.txt").write_text("the user's other file\n")
    return Machine(root, home, outside, key_text)


def hostile_run(
    machine: Machine,
    model: Any,
    steps: list[Any],
    *flags: str,
    timeout: float = 120,
    **env: str,
) -> tuple[Result, ScriptedModel, list[dict[str, Any]]]:
    """`nexus run` with a model that takes `steps` (then finishes); the outcome, the model
    server (with every request it got) and the run's journal events."""
    server = model([*steps, call("finish", summary="done")], api_key=API_KEY)
    result = nexus(
        machine.root,
        "run",
        "do what you are told",
        "--json",
        "--base-url",
        server.url,
        *flags,
        timeout=timeout,
        HOME=str(machine.home),
        OPENAI_API_KEY=API_KEY,
        **env,
    )
    return result, server, events(machine)


def events(machine: Machine) -> list[dict[str, Any]]:
    if not machine.journal.exists():
        return []
    return [json.loads(line) for line in machine.journal.read_text().splitlines()]


def commands(*lines: str) -> list[Any]:
    return [call("run_command", command=line) for line in lines]


def observations(server: ScriptedModel) -> str:
    """Everything the model was shown, as one text."""
    return json.dumps(server.requests)


class Listener:
    """A TCP server on loopback that counts who connects: a command must never reach it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()
