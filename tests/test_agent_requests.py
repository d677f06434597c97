"""The agent's request/reply channel over a real pipe: replies, refusals, cancels."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nexus_ls.agent import protocol
from nexus_ls.agent.approvals import Approvals
from nexus_ls.agent.requests import HostError, NoReply, Requests

Host = Callable[[dict[str, Any]], dict[str, Any] | None]


HOSTS: list[threading.Thread] = []  # the running test's host threads


@pytest.fixture
def pipe() -> Iterator[tuple[protocol.Channel, int]]:
    read, write = os.pipe()
    with os.fdopen(write, "wb") as stream:
        yield protocol.Channel(stream), read
    # The write end is closed: each host thread reads its end and returns. Only then is
    # the read end closed, or the next test's pipe could get its number and a thread of
    # this test would read (and answer) that test's requests.
    for thread in HOSTS:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in HOSTS), "a host thread did not stop"
    HOSTS.clear()
    os.close(read)


def serve(read: int, requests: Requests, answer: Host) -> threading.Thread:
    """A host that reads the agent's messages and replies to each request with `answer`."""

    def loop() -> None:
        for line in protocol.read_lines(read):
            message = protocol.decode(line)
            if message and message["type"] == protocol.REQUEST:
                reply = answer(message)
                if reply is not None:
                    requests.reply({"type": protocol.REPLY, "id": message["id"], **reply})

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    HOSTS.append(thread)
    return thread


def test_a_request_gets_the_hosts_reply(pipe: tuple[protocol.Channel, int]) -> None:
    channel, read = pipe
    requests = Requests(channel, threading.Event())
    seen: list[dict[str, Any]] = []

    def answer(message: dict[str, Any]) -> dict[str, Any]:
        seen.append(message)
        return {"body": {"echo": message["body"]["text"].upper()}}

    serve(read, requests, answer)
    assert requests.ask("echo", {"text": "hi"}) == {"echo": "HI"}
    assert requests.ask("echo", {"text": "again"}) == {"echo": "AGAIN"}
    assert [m["kind"] for m in seen] == ["echo", "echo"]
    assert seen[0]["id"] != seen[1]["id"]


def test_a_refused_request_raises_with_the_hosts_words(pipe: tuple[protocol.Channel, int]) -> None:
    channel, read = pipe
    requests = Requests(channel, threading.Event())
    serve(read, requests, lambda m: {"error": f"unknown request kind {m['kind']!r}"})
    with pytest.raises(HostError, match="unknown request kind 'remember'"):
        requests.ask("remember", {})


def test_a_cancel_ends_the_wait(pipe: tuple[protocol.Channel, int]) -> None:
    channel, read = pipe
    cancel = threading.Event()
    requests = Requests(channel, cancel)
    serve(read, requests, lambda m: (cancel.set(), None)[1])  # the host never replies
    with pytest.raises(NoReply):
        requests.ask("approval", {"command": "make"})


def test_approvals_are_approval_requests(pipe: tuple[protocol.Channel, int]) -> None:
    channel, read = pipe
    requests = Requests(channel, threading.Event())
    decisions = iter([{"body": {"decision": "once", "by": "user"}}, {"error": "no editor"},
                      {"body": {"decision": "maybe"}}])  # fmt: skip
    serve(read, requests, lambda m: next(decisions))
    approvals = Approvals(requests)
    assert approvals.ask({"command": "make"}) == ("once", "user")
    assert approvals.ask({"command": "make"}) == ("deny", "the host could not ask: no editor")
    assert approvals.ask({"command": "make"})[0] == "deny"  # anything else is a refusal


def test_a_note_from_the_host_reaches_the_model_at_its_next_turn(tmp_path: Path) -> None:
    from agent_harness import run_agent
    from conftest import make_repo
    from scripted_model import call

    from nexus_ls.tools.base import Inbox

    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    inbox = Inbox()

    def first(shown: list[dict[str, Any]]) -> dict[str, Any]:
        inbox.put({"kind": "message", "from": "run-child", "text": "child says hello"})
        return call("read_file", path="a.txt")

    ran = run_agent(repo, [first, call("finish", summary="done")], inbox=inbox)
    assert ran.outcome.status == "succeeded"
    assert "child says hello" not in str(ran.model.prompts[0])
    last = ran.model.prompts[1][-1]
    assert last["role"] == "user"
    assert last["content"] == "[message from run-child]\n> child says hello"
    assert any("1 note(s) reached the model" in m for m in ran.messages("message"))
