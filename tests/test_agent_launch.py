"""Agent processes started ahead of their run: the spare a long-lived host keeps is the next
run's agent, is replaced when it died, is killed (and reaped) on stop, and a start that
fails leaves no agent behind; nor does a host that fails while reading its agent."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_repo
from scripted_model import call, hang
from test_run_cancel import wait_for

import nexus_ls.supervisor as supervisor_module
from nexus_ls.agent_launch import AGENT_CWD, AgentLauncher
from nexus_ls.config import Limits, ModelSettings, RunSettings
from nexus_ls.errors import NexusError
from nexus_ls.sandbox import open_workspace
from nexus_ls.supervisor import Supervisor


def settings(url: str) -> RunSettings:
    return RunSettings(ModelSettings(base_url=url, model="scripted-model"), Limits(max_steps=5))


def process_state(pid: int) -> str | None:
    """A process's state letter (`Z` for a zombie), None once it is reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def agent_pid_of(sup: Supervisor, run_id: str) -> int:
    (started,) = sup.journal.query(run=run_id, grep="agent started")
    return int(started["data"]["pid"])


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "proj", {"a.txt": "a\n"})


@pytest.fixture
def supervisors() -> Iterator[list[Supervisor]]:
    made: list[Supervisor] = []
    yield made
    for sup in made:
        sup.stop_all()


def new_supervisor(repo: Path, made: list[Supervisor], **kwargs: Any) -> Supervisor:
    sup = Supervisor(open_workspace(repo), **kwargs)
    made.append(sup)
    return sup


def test_the_next_run_takes_the_spare_and_a_new_one_waits(repo: Path, model, supervisors) -> None:
    server = model([call("finish", summary="one"), call("finish", summary="two")])
    sup = new_supervisor(repo, supervisors, spare=True)
    spares = []
    for _ in range(2):
        spare = sup.launcher.spare_pid()
        assert spare is not None and process_state(spare) not in (None, "Z")
        record = sup.wait(sup.start("say done", settings(server.url)).id, timeout=60)
        assert record.status == "succeeded", record.error
        assert agent_pid_of(sup, record.id) == spare  # the run's agent was the spare
        assert process_state(spare) is None  # and it was reaped when it ended
        spares.append(spare)
    assert sup.launcher.spare_pid() not in (None, *spares)
    logs = sup.ws.state_dir / "logs"
    assert {p.name for p in logs.iterdir()} == {f"{run_id}.stderr" for run_id in sup.handles}


def test_a_spare_starts_outside_any_worktree_and_enters_its_run_s(
    repo: Path, model, supervisors
) -> None:
    server = model([hang()])
    sup = new_supervisor(repo, supervisors, spare=True)
    spare = sup.launcher.spare_pid()
    assert spare is not None
    assert os.readlink(f"/proc/{spare}/cwd") == AGENT_CWD
    record = sup.start("wait for the model", settings(server.url))
    wait_for(lambda: bool(server.requests), "the agent's model request")
    assert os.readlink(f"/proc/{spare}/cwd") == record.worktree
    assert sup.cancel(record.id)
    assert sup.wait(record.id, timeout=30).status == "cancelled"


def test_stop_all_kills_the_spare_and_reaps_it(repo: Path, supervisors) -> None:
    sup = new_supervisor(repo, supervisors, spare=True)
    spare = sup.launcher.spare_pid()
    assert spare is not None
    sup.stop_all()
    assert process_state(spare) is None  # killed and reaped: no zombie
    assert sup.launcher.spare_pid() is None
    assert not list((sup.ws.state_dir / "logs").glob(".spare-*"))


def test_a_dead_spare_is_replaced_by_a_new_agent(repo: Path, model, supervisors) -> None:
    server = model([call("finish", summary="done")])
    sup = new_supervisor(repo, supervisors, spare=True)
    dead = sup.launcher.spare_pid()
    assert dead is not None
    os.kill(dead, signal.SIGKILL)
    wait_for(lambda: process_state(dead) == "Z", "the spare to die")
    record = sup.wait(sup.start("say done", settings(server.url)).id, timeout=60)
    assert record.status == "succeeded", record.error
    assert agent_pid_of(sup, record.id) != dead
    assert process_state(dead) is None  # reaped
    assert sup.launcher.spare_pid() not in (None, dead)


def test_a_spare_started_for_another_environment_is_not_used(
    repo: Path, model, supervisors, monkeypatch
) -> None:
    server = model([call("finish", summary="done")])
    sup = new_supervisor(repo, supervisors, spare=True)
    stale = sup.launcher.spare_pid()
    assert stale is not None
    monkeypatch.setenv("NEXUS_TEST_CHANGED", "1")
    record = sup.wait(sup.start("say done", settings(server.url)).id, timeout=60)
    assert record.status == "succeeded", record.error
    assert agent_pid_of(sup, record.id) != stale
    assert process_state(stale) is None


def test_a_host_without_a_spare_keeps_none(repo: Path, model, supervisors) -> None:
    server = model([call("finish", summary="done")])
    sup = new_supervisor(repo, supervisors)
    assert sup.launcher.spare_pid() is None
    record = sup.wait(sup.start("say done", settings(server.url)).id, timeout=60)
    assert record.status == "succeeded", record.error
    assert sup.launcher.spare_pid() is None


def test_prestart_starts_the_next_run_s_agent_only(repo: Path, model, supervisors) -> None:
    server = model([call("finish", summary="done")])
    sup = new_supervisor(repo, supervisors)
    sup.prestart()
    early = sup.launcher.spare_pid()
    assert early is not None
    record = sup.wait(sup.start("say done", settings(server.url)).id, timeout=60)
    assert record.status == "succeeded", record.error
    assert agent_pid_of(sup, record.id) == early
    assert sup.launcher.spare_pid() is None  # no other is kept


@pytest.mark.parametrize("spare", [False, True])
def test_a_start_that_fails_in_its_sandbox_leaves_no_agent(
    repo: Path, supervisors, monkeypatch, spare: bool
) -> None:
    sup = new_supervisor(repo, supervisors, spare=spare)
    launched: list[subprocess.Popen[bytes]] = []
    launch = sup.launcher.launch

    def recorded(run_id: str) -> subprocess.Popen[bytes]:
        launched.append(launch(run_id))
        return launched[-1]

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise NexusError("the snapshot failed")

    monkeypatch.setattr(sup.launcher, "launch", recorded)
    monkeypatch.setattr(supervisor_module, "make_sandbox", failing)
    with pytest.raises(NexusError, match="the snapshot failed"):
        sup.start("anything", settings("http://127.0.0.1:9/v1"))
    (agent,) = launched
    assert agent.returncode is not None  # killed and reaped
    assert process_state(agent.pid) is None
    assert sup.store.list() == []
    assert not list((sup.ws.state_dir / "logs").glob("*.stderr"))
    assert (sup.launcher.spare_pid() is not None) == spare  # a spare is there for the next


def test_a_launcher_closed_starts_agents_but_keeps_no_spare(tmp_path: Path) -> None:
    launcher = AgentLauncher(tmp_path / "logs", keep_spare=True)
    launcher.refill()
    spare = launcher.spare_pid()
    launcher.close()
    assert spare is not None and process_state(spare) is None
    launcher.refill()
    assert launcher.spare_pid() is None
    agent = launcher.launch("r1")
    try:
        assert agent.pid != spare and (tmp_path / "logs" / "r1.stderr").exists()
    finally:
        agent.kill()
        agent.wait()
        for stream in (agent.stdin, agent.stdout):
            assert stream is not None
            stream.close()


def test_a_host_that_fails_reading_its_agent_ends_the_run(repo: Path, model, supervisors) -> None:
    server = model([hang()])
    sup = new_supervisor(repo, supervisors)

    def broken(record: Any, message: Any) -> None:
        raise RuntimeError("journal unwritable")

    sup._journal_agent_event = broken  # type: ignore[method-assign]
    record = sup.wait(sup.start("anything", settings(server.url)).id, timeout=30)
    assert record.status == "failed"
    assert record.error == "NEXUS stopped reading the agent (RuntimeError: journal unwritable)"
    assert not sup.active()
