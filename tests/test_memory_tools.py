"""`remember` and `recall` from a model's side: the real loop and tools, asking a host over
the real request channel (a pipe), answered by the memory's own handlers."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from agent_harness import run_agent
from conftest import make_repo
from scripted_model import call

from nexus_ls.agent import protocol
from nexus_ls.agent.__main__ import host_asker
from nexus_ls.agent.requests import Requests
from nexus_ls.errors import NexusError
from nexus_ls.journal import Journal, Redactor
from nexus_ls.memory import WorkspaceMemory, serve_memory
from nexus_ls.tools.registry import offered

RUN = "20261202-111111111-aaaa"


class Host:
    """What the supervisor does with a request: its handler's body, or its error."""

    def __init__(self, memory: WorkspaceMemory) -> None:
        self.handlers: dict[str, Any] = {}
        serve_memory(self, memory)
        self.handle = SimpleNamespace(record=SimpleNamespace(id=RUN))

    def serve(self, kind: str, handler: Any) -> None:
        self.handlers[kind] = handler

    def answer(self, message: dict[str, Any]) -> dict[str, Any]:
        try:
            return {"body": self.handlers[message["kind"]](self.handle, message["body"])}
        except NexusError as exc:
            return {"error": str(exc)}


@pytest.fixture
def memory(tmp_path: Path) -> WorkspaceMemory:
    state = tmp_path / "state"
    state.mkdir()
    redactor = Redactor(environ={"DEPLOY_TOKEN": "tok-3f9a8b7c6d5e"})
    return WorkspaceMemory(state, Journal(state / "journal.jsonl", redactor))


@pytest.fixture
def ask(memory: WorkspaceMemory) -> Iterator[Any]:
    read, write = os.pipe()
    host = Host(memory)
    with os.fdopen(write, "wb") as stream:
        requests = Requests(protocol.Channel(stream), threading.Event())

        def loop() -> None:
            for line in protocol.read_lines(read):
                message = protocol.decode(line)
                if message and message["type"] == protocol.REQUEST:
                    requests.reply({"type": protocol.REPLY, "id": message["id"],
                                    **host.answer(message)})  # fmt: skip

        threading.Thread(target=loop, daemon=True).start()
        yield host_asker(requests)
    os.close(read)


def observations(ran: Any) -> list[str]:
    return [
        e["data"]["result"] for e in ran.events if e["data"].get("tool") in ("remember", "recall")
    ]


def test_a_model_remembers_and_recalls_through_its_host(
    tmp_path: Path, memory: WorkspaceMemory, ask: Any
) -> None:
    repo = make_repo(tmp_path / "p", {"a.py": "x = 1\n"})
    memory.add("The docs build with `make -C docs html`", ["docs"])
    ran = run_agent(repo, [
        call("remember", text="Integration tests need `docker compose up db` first",
             tags=["tests", "docker"]),
        call("remember", text="integration tests need `docker compose up db` first"),
        call("recall", query="how do the integration tests run"),
        call("recall", query="kubernetes"),
        call("remember", text="deploy with DEPLOY_TOKEN=tok-3f9a8b7c6d5e ./deploy.sh"),
        call("remember", text="  "),
        call("finish", summary="done"),
    ], ask=ask)  # fmt: skip

    seen = observations(ran)
    assert seen[0] == "remembered as L2: Integration tests need `docker compose up db` first"
    assert seen[1].startswith("already known; confirmed as L2")
    assert seen[2] == (
        "1 lesson for “how do the integration tests run”, best first:\n"
        f"- [L2] Integration tests need `docker compose up db` first (learned in run {RUN})"
    )
    assert seen[3] == "no lesson in this workspace's memory matches “kubernetes”"
    assert seen[4] == (
        "error: not stored: the lesson holds a secret (DEPLOY_TOKEN); NEXUS never keeps one "
        "in memory: say it without the secret"
    )
    assert seen[5] == "error: the lesson is empty; say what to remember"

    assert memory.get("L2").uses == 0  # journaled at once; stored when the run ends:
    memory.learn_from_run(RUN)
    lesson = memory.get("L2")
    assert lesson.source_run == RUN and lesson.kind == "remembered"
    assert lesson.tags == ["tests", "docker"] and lesson.uses == 1 and lesson.used_by == [RUN]
    assert "tok-3f9a8b7c6d5e" not in memory.store.path.read_text()
    actions = [e["data"]["action"] for e in memory.journal.query(category="memory")]
    assert actions == ["added", "remembered", "confirmed", "recalled", "recalled", "refused"]
    assert "tok-3f9a8b7c6d5e" not in memory.journal.path.read_text()


def test_the_tools_are_offered_to_native_and_text_models_not_guided_ones() -> None:
    for mode in ("native", "text"):
        assert {"remember", "recall"} <= {tool.name for tool in offered(mode)}
    assert not {"remember", "recall"} & {tool.name for tool in offered("guided")}


def test_without_a_host_the_tools_say_so(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p", {"a.py": "x = 1\n"})
    ran = run_agent(repo, [call("recall", query="tests"), call("finish", summary="ok")])
    assert observations(ran) == ["error: this run has no NEXUS host to serve 'recall'"]
