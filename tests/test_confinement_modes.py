"""The sandbox in force is stated, ordinary work still works inside it, and where bubblewrap
cannot run NEXUS falls back to Landlock or refuses, unless the user turned it off."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from conftest import live_processes, nexus, sh
from hostile import Machine, commands, hostile_run
from scripted_model import call

from nexus_ls.errors import NexusError
from nexus_ls.sandbox import confinement, landlock
from nexus_ls.sandbox.settings import SandboxSettings

NO_BWRAP = {"NEXUS_BWRAP": "/nonexistent/bwrap"}


def results(events: list[dict]) -> list[str]:
    """What the model's commands and test runs returned (not NEXUS's own check at finish)."""
    return [
        e["data"]["result"]
        for e in events
        if e["category"] in ("command", "test") and "tool" in e["data"]
    ]


def policy(machine: Machine, text: str) -> None:
    path = machine.home / ".config" / "nexus" / "policy.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


ORDINARY = [
    "git status --short; git diff --stat; git log --oneline -1",
    "echo kept > /tmp/scratch && echo in-home > $HOME/.cache-test && echo made > made.txt",
    "cat /tmp/scratch $HOME/.cache-test made.txt",
]


def test_ordinary_work_under_bubblewrap(machine: Machine, model) -> None:
    steps = [*commands(*ORDINARY), call("run_tests")]
    result, server, events = hostile_run(machine, model, steps)
    assert result.code == 0, result.stderr
    assert "nexus: sandbox: bubblewrap; writable: the worktree" in result.stderr
    status, written, read, tests = results(events)
    assert " M calc.py" not in status and "exit code 0" in status  # the base holds the change
    assert "exit code 0" in written
    assert "kept\nin-home\nmade" in read  # /tmp and $HOME last from one command to the next
    assert "tests: 0 passed, 1 failed (exit 1)" in tests and "assert -1 == 5" in tests
    out = result.json()
    assert sh(machine.root, "git", "show", f"{out['branch']}:made.txt") == "made\n"
    record = nexus(machine.root, "runs", "--json").json()[0]
    assert record["sandbox"] == "bwrap"
    show = nexus(machine.root, "show", out["run_id"]).stdout
    assert "run      sandbox: bubblewrap" in show


def test_a_commands_own_git_commit_is_refused_with_the_reason(machine: Machine, model) -> None:
    result, server, events = hostile_run(
        machine, model, commands("echo x > f.txt; git add f.txt && git commit -m mine")
    )
    assert result.code == 0
    (said,) = results(events)
    assert "Read-only file system" in said and "NEXUS commits each step" in said
    out = result.json()
    log = sh(machine.root, "git", "log", "--format=%an %s", out["branch"], "-2")
    assert log.splitlines()[0].startswith("NEXUS run `echo x > f.txt; git add")


def test_landlock_is_the_fallback_when_bubblewrap_cannot_run(machine: Machine, model) -> None:
    if landlock.abi_version() < 1:
        pytest.skip("this kernel has no Landlock")
    before = machine.snapshot()
    steps = [
        *commands(
            f"echo owned > {machine.root}/calc.py; cat {machine.home}/.ssh/id_ed25519",
            "echo t > $TMPDIR/t && cat $TMPDIR/t && echo w > made.txt",
        ),
        call("run_tests"),
    ]
    result, server, events = hostile_run(machine, model, steps, **NO_BWRAP)
    assert result.code == 0, result.stderr
    assert "nexus: sandbox: Landlock (ABI" in result.stderr
    assert "/nonexistent/bwrap is not an executable file" in result.stderr
    attack, ordinary, tests = results(events)
    assert "Permission denied" in attack and machine.key_text.splitlines()[1] not in attack
    assert "t\n" in ordinary and "exit code 0" in ordinary
    assert "tests: 0 passed, 1 failed" in tests
    assert machine.snapshot() == before
    assert nexus(machine.root, "runs", "--json").json()[0]["sandbox"] == "landlock"


def test_bwrap_required_but_unavailable_refuses_before_any_git_state(
    machine: Machine, model
) -> None:
    refs = sh(machine.root, "git", "for-each-ref")
    result, server, _ = hostile_run(machine, model, [], "--sandbox", "bwrap", **NO_BWRAP)
    assert result.code == 2
    assert "nexus: error: sandbox = bwrap, but /nonexistent/bwrap is not an executable file" in (
        result.stderr
    )
    assert "user namespaces" in result.stderr and "Traceback" not in result.stderr
    assert sh(machine.root, "git", "for-each-ref") == refs  # no branch was made
    assert server.requests == []


def test_neither_sandbox_refuses_and_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(landlock, "abi_version", lambda: 0)
    with pytest.raises(NexusError) as err:
        confinement.choose_mode(SandboxSettings(bwrap="/nonexistent/bwrap"))
    message = str(err.value)
    assert "cannot confine the commands a run starts here" in message
    assert "Landlock: not available in this kernel" in message
    assert 'sandbox = "off"' in message and "--sandbox off" in message


def test_sandbox_off_is_stated_at_every_run(machine: Machine, model) -> None:
    policy(machine, 'sandbox = "off"\n')
    result, server, events = hostile_run(machine, model, commands("echo hi"))
    assert result.code == 0
    assert "nexus: sandbox OFF: commands run unconfined" in result.stderr
    started = next(e for e in events if e["message"].startswith("sandbox OFF"))
    assert started["level"] == "WARNING" and started["data"]["source"].endswith("policy.toml")
    assert nexus(machine.root, "runs", "--json").json()[0]["sandbox"] == "off"


def test_a_bad_policy_file_is_a_clear_error(machine: Machine, model) -> None:
    policy(machine, 'sandbox = "sometimes"\n')
    result, _, _ = hostile_run(machine, model, [])
    assert result.code == 2
    assert "policy.toml: sandbox 'sometimes' is not one of auto, bwrap, landlock, off" in (
        result.stderr
    )
    policy(machine, "sandbox = \n")
    result, _, _ = hostile_run(machine, model, [])
    assert result.code == 2 and "is not valid TOML" in result.stderr


def test_the_process_limit_stops_a_fork_bomb(machine: Machine, model) -> None:
    policy(machine, "[limits]\nprocesses = 40\n")
    bomb = "for i in $(seq 1 200); do sleep 3003 & done; echo spawned"
    steps = [call("run_command", command=bomb, timeout=10)]
    result, server, events = hostile_run(machine, model, steps)
    assert result.code == 0, result.stderr
    (said,) = results(events)
    assert "Cannot fork" in said or "Resource temporarily unavailable" in said
    assert live_processes("sleep 3003") == []
    started = next(e for e in events if e["message"].startswith("sandbox:"))
    assert "40 processes" in started["message"] and "not enforced" not in started["message"]


def test_the_run_start_event_describes_the_profile(machine: Machine, model) -> None:
    result, _, events = hostile_run(machine, model, [])
    started = next(e for e in events if e["message"].startswith("sandbox:"))
    profile = json.loads(json.dumps(started["data"]["sandbox"]))
    assert profile["mode"] == "bwrap" and profile["network"] is False
    assert str(machine.home) in profile["hidden"]
    assert str(machine.root) in profile["hidden"]  # the user's live tree; the run has its base
    assert profile["worktree"].startswith(str(machine.root / ".git" / "nexus" / "worktrees"))
    assert "OPENAI_API_KEY" not in profile["env"]


KEYRING = (
    "import ctypes, os\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "number = {'x86_64': 250, 'aarch64': 219}[os.uname().machine]  # keyctl\n"
    "print('keyring', libc.syscall(number, 0, -4, 0), ctypes.get_errno())\n"
)


def test_landlock_commands_have_no_capabilities_sockets_or_host_secrets(
    machine: Machine, model, tmp_path: Path
) -> None:
    if landlock.abi_version() < 1:
        pytest.skip("this kernel has no Landlock")

    with (
        socket.socket(socket.AF_UNIX) as host_socket,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
    ):
        host_socket.bind(str(tmp_path / "host.sock"))
        host_socket.listen(1)
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(0)
        probe = (
            "import socket\n"
            "for family, kind, where in [\n"
            f"    (socket.AF_UNIX, socket.SOCK_STREAM, {str(tmp_path / 'host.sock')!r}),\n"
            f"    (socket.AF_INET, socket.SOCK_DGRAM, ('127.0.0.1', {udp.getsockname()[1]})),\n"
            "]:\n"
            "    try:\n"
            "        s = socket.socket(family, kind); s.connect(where); s.send(b'x')\n"
            "        print('REACHED', where)\n"
            "    except OSError as exc:\n"
            "        print('refused', exc)\n"
        )
        steps = [
            call("write_file", path="probe.py", content=probe),
            call("write_file", path="keyring.py", content=KEYRING),
            *commands(
                "grep CapEff /proc/self/status; python3 probe.py; "
                "for p in $(pgrep -f 'nexus run'); do cat /proc/$p/environ; done; "
                "ipcmk -M 4096 || echo NO-SYSV-IPC; python3 keyring.py; true"
            ),
        ]
        result, server, events = hostile_run(machine, model, steps, **NO_BWRAP)
        assert result.code == 0, result.stderr
        (said,) = results(events)
        assert "CapEff:\t0000000000000000" in said
        assert "REACHED" not in said and said.count("refused") == 2
        assert "OPENAI_API_KEY" not in said
        assert "NO-SYSV-IPC" in said  # System V IPC: no namespace under Landlock, so refused
        assert "keyring -1 13" in said  # keyctl refused (EACCES)
        with pytest.raises(BlockingIOError):
            udp.recv(10)


def test_nexus_never_follows_a_rewritten_git_pointer(machine: Machine, model) -> None:
    """Landlock cannot keep the worktree's `.git` read-only; a pointer to a repository the
    model made (its config naming a FIFO as excludes file) once hung list_files."""
    if landlock.abi_version() < 1:
        pytest.skip("this kernel has no Landlock")
    evil = (
        "git init -q $PWD/.evil && mkfifo $PWD/.evil/.git/fifo && "
        "git --git-dir=$PWD/.evil/.git config core.excludesFile $PWD/.evil/.git/fifo && "
        'echo "gitdir: $PWD/.evil/.git" > .git && cat .git'
    )
    steps = [*commands(evil), call("list_files"), call("write_file", path="n.txt", content="n\n")]
    result, server, events = hostile_run(machine, model, steps, "--wall-time", "60", **NO_BWRAP)
    assert result.code == 0, result.stderr
    listing = next(e for e in events if e["message"].startswith("step 2: list_files"))
    assert "calc.py" in listing["data"]["result"]
    assert sh(machine.root, "git", "show", f"{result.json()['branch']}:n.txt") == "n\n"
