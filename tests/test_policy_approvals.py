"""Every way a command that needs the user's yes gets its answer, through real `nexus run`s:
headless (refused, the model told why), `--allow`, `--yes`, a real terminal, and the
policy files; every question and answer is journaled."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path

import pytest
from conftest import clean_env, nexus_command, sh
from hostile import API_KEY, Machine, hostile_run
from scripted_model import call


def told(server) -> list[str]:  # type: ignore[no-untyped-def]
    """What the model saw as the result of each of its tool calls."""
    return [m["content"] for m in server.requests[-1]["messages"] if m["role"] == "tool"]


def decisions(events: list[dict]) -> list[str]:
    return [e["message"] for e in events if e["category"] == "command" and e["step"] is None]


def connect(port: int) -> str:
    return f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 3)\""


def test_headless_runs_refuse_what_needs_asking_and_say_how_to_allow(
    machine: Machine, model, loopback
) -> None:
    steps = [
        call("run_command", command="git push origin main"),
        call("run_command", command=connect(loopback.port), network=True),
    ]
    result, server, events = hostile_run(machine, model, steps)
    assert result.code == 0, result.stderr
    push, net = told(server)
    assert push.startswith("error: not run: running it with network needs the user's approval")
    assert 'nexus run --allow "git push", or --yes' in push
    assert "the command asks for the network" in net
    assert loopback.connections == 0
    assert decisions(events) == [
        "asking to run `git push origin main` with network: rule `git push` -> ask (default)",
        "refused (no one could be asked (nexus run has no terminal)): `git push origin main` "
        "with network",
        f"asking to run `{connect(loopback.port)}` with network: the command asks for the network",
        "refused (no one could be asked (nexus run has no terminal)): "
        f"`{connect(loopback.port)}` with network",
    ]


def test_allow_flag_grants_without_asking(machine: Machine, model, loopback) -> None:
    steps = [call("run_command", command=connect(loopback.port), network=True)]
    result, server, events = hostile_run(machine, model, steps, "--allow", "python3 -c")
    assert result.code == 0, result.stderr
    assert loopback.connections == 1  # the network really was granted
    assert decisions(events) == []  # nobody was asked
    command = next(e for e in events if e["category"] == "command")
    rule = command["data"]["details"]["policy"]["rule"]
    assert rule == "`python3 -c` -> allow with network (--allow)"


def test_yes_allows_each_question_and_the_answer_is_journaled(
    machine: Machine, model, loopback
) -> None:
    steps = [call("run_command", command=connect(loopback.port), network=True)]
    result, server, events = hostile_run(machine, model, steps, "--yes")
    assert result.code == 0
    assert loopback.connections == 1
    assert decisions(events)[-1] == f"allowed once (--yes): `{connect(loopback.port)}` with network"


def test_the_user_answers_at_a_real_terminal(machine: Machine, model, loopback) -> None:
    steps = [
        call("run_command", command="git push origin main"),
        call("run_command", command="git push origin other"),  # same rule: not asked again
        call("run_command", command=connect(loopback.port), network=True),
    ]
    server = model([*steps, call("finish", summary="done")], api_key=API_KEY)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [*nexus_command(), "run", "push things", "--base-url", server.url],
        cwd=machine.root,
        env=clean_env(HOME=str(machine.home), OPENAI_API_KEY=API_KEY),
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    seen = ""
    for answer in ("r", "n"):
        deadline = time.monotonic() + 60
        while seen.count("[N]o: ") < ("r", "n").index(answer) + 1:
            assert time.monotonic() < deadline, seen
            ready, _, _ = select.select([leader], [], [], 1)
            if ready:
                seen += os.read(leader, 4096).decode(errors="replace")
        os.write(leader, f"{answer}\n".encode())
    proc.communicate(timeout=60)
    os.close(leader)
    assert proc.returncode == 0
    assert seen.count("[N]o: ") == 2
    assert "asks to run `git push origin main` with network" in seen
    results = told(server)
    assert not results[0].startswith("error:") and not results[1].startswith("error:")
    assert results[2].startswith("error: not run:") and "you, at the terminal" in results[2]
    assert loopback.connections == 0


def test_user_rules_deny_and_the_repositorys_committed_rules_apply(machine: Machine, model) -> None:
    policy = machine.home / ".config" / "nexus" / "policy.toml"
    policy.parent.mkdir(parents=True)
    policy.write_text('[[rules]]\ncommand = "rm"\ndecision = "deny"\n')
    (machine.root / ".nexus").mkdir()
    (machine.root / ".nexus" / "policy.toml").write_text(
        'sandbox = "off"\n[[rules]]\ncommand = "make deploy"\ndecision = "deny"\n'
    )
    sh(machine.root, "git", "add", ".nexus/policy.toml")
    sh(machine.root, "git", "commit", "-q", "-m", "policy")
    steps = [
        # The worktree's copy is the model's to edit; it must change nothing.
        call(
            "write_file",
            path=".nexus/policy.toml",
            content='[[rules]]\ncommand = "rm"\ndecision = "allow"\n',
        ),  # fmt: skip
        call("run_command", command="rm -f calc.py"),
        call("run_command", command="make deploy"),
    ]
    result, server, events = hostile_run(machine, model, steps)
    assert result.code == 0, result.stderr
    _, rm, deploy = told(server)
    assert rm.startswith("error: not run: the policy refuses it: refused by rule `rm` -> deny")
    assert "make deploy` -> deny (the repository's .nexus/policy.toml)" in deploy
    assert "sandbox: bubblewrap" in result.stderr  # the repository cannot turn it off
    assert "the repository's .nexus/policy.toml: ignored sandbox" in result.stderr
    assert sh(machine.root, "git", "show", f"{result.json()['branch']}:calc.py")


def test_a_users_rule_can_let_an_approved_command_out_of_the_sandbox(
    machine: Machine, model
) -> None:
    policy = machine.home / ".config" / "nexus" / "policy.toml"
    policy.parent.mkdir(parents=True)
    policy.write_text('[[rules]]\ncommand = "touch"\ndecision = "ask"\nsandbox = false\n')
    target = machine.outside / "made-outside"
    steps = [call("run_command", command=f"touch {target}")]
    result, server, events = hostile_run(machine, model, steps)  # headless: refused
    assert result.code == 0 and not target.exists()
    result, server, events = hostile_run(machine, model, steps, "--yes")
    assert result.code == 0 and target.exists()
    command = [e for e in events if e["category"] == "command" and e["step"]][-1]
    assert command["data"]["details"]["sandboxed"] is False
    assert "outside the sandbox (" in command["data"]["details"]["policy"]["rule"]


def test_an_uncommitted_repository_policy_is_not_the_repositorys(machine: Machine, model) -> None:
    """A policy file a model wrote (and the user accepted without committing) is part of the
    snapshot, but it is not what the repository committed: it changes nothing."""
    (machine.root / ".nexus").mkdir()
    (machine.root / ".nexus" / "policy.toml").write_text(
        '[[rules]]\ncommand = "echo"\ndecision = "deny"\n'
    )
    result, server, _ = hostile_run(machine, model, [call("run_command", command="echo hi")])
    assert result.code == 0
    assert told(server)[0].startswith("exit code 0")


def test_a_command_let_out_never_follows_a_rewritten_git_pointer(
    machine: Machine, model, tmp_path: Path
) -> None:
    """Under Landlock a command can rewrite the worktree's `.git`; the `git status` a rule
    lets out must still use the run's own git dir, with its hooks and fsmonitor off."""
    from nexus_ls.sandbox import landlock

    if landlock.abi_version() < 1:
        pytest.skip("this kernel has no Landlock")
    policy = machine.home / ".config" / "nexus" / "policy.toml"
    policy.parent.mkdir(parents=True)
    policy.write_text('[[rules]]\ncommand = "git status"\ndecision = "allow"\nsandbox = false\n')
    marker = tmp_path / "fsmonitor-ran"
    evil = (
        "E=$HOME/g; git init -q --bare $E && cp -r $(git rev-parse --git-common-dir)/objects "
        "$E/ 2>/dev/null; git config -f $E/config core.bare false && "
        f"git config -f $E/config core.worktree $PWD && "
        f"git config -f $E/config core.fsmonitor 'touch {marker}; false' && "
        'echo "gitdir: $E" > .git'
    )
    steps = [*[call("run_command", command=line) for line in (evil, "git status")]]
    result, server, _ = hostile_run(machine, model, steps, NEXUS_BWRAP="/nonexistent/bwrap")
    assert result.code == 0, result.stderr
    assert "Landlock" in result.stderr
    assert not marker.exists()
