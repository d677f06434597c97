"""`nexus acp` end to end: the real command over stdio, driven by the Agent Client
Protocol SDK's own client side, its runs against the scripted HTTP model."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from acp import PROTOCOL_VERSION, RequestError, spawn_agent_process, text_block
from acp.connection import StreamDirection, StreamEvent
from acp.schema import (
    AgentMessageChunk,
    AgentPlanUpdate,
    AllowedOutcome,
    ClientCapabilities,
    DeniedOutcome,
    FileEditToolCallContent,
    Implementation,
    PermissionOption,
    RequestPermissionResponse,
    ToolCallProgress,
    ToolCallStart,
    ToolCallUpdate,
)
from conftest import clean_env, make_repo, sh
from scripted_model import call, hang

ROOT = Path(__file__).resolve().parents[1]
CALC = "def add(a, b):\n    return a - b\n"
STEPS = ("read calc.py", "fix add()", "check the fix")


def plan(*statuses: str) -> dict[str, Any]:
    steps = [{"text": t, "status": s} for t, s in zip(STEPS, statuses, strict=True)]
    return call("update_plan", "My plan.", steps=steps)


async def until(condition: Any, limit: float) -> bool:
    """Poll `condition` until it holds; the limit only stops a broken test from hanging."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


class Editor:
    """An ACP client (the SDK's `Client` side) that records what the agent sends and
    answers permission requests from a list."""

    def __init__(self) -> None:
        self.updates: list[Any] = []
        self.questions: list[tuple[ToolCallUpdate, list[PermissionOption]]] = []
        self.answers: list[str | None] = []  # option ids; None: the question is cancelled
        self.wire: list[dict[str, Any]] = []  # every JSON-RPC message, both ways

    async def request_permission(
        self, session_id: str, tool_call: ToolCallUpdate, options: list[PermissionOption], **_: Any
    ) -> RequestPermissionResponse:
        self.questions.append((tool_call, options))
        choice = self.answers.pop(0)
        if choice is None:
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(
            outcome=AllowedOutcome(outcome="selected", option_id=choice)
        )

    async def session_update(self, session_id: str, update: Any, **_: Any) -> None:
        self.updates.append(update)

    def observe(self, event: StreamEvent) -> None:
        arrow = ">" if event.direction == StreamDirection.OUTGOING else "<"
        self.wire.append({"dir": arrow, **event.message})

    def of(self, kind: type) -> list[Any]:
        return [u for u in self.updates if isinstance(u, kind)]


@asynccontextmanager
async def nexus_acp(tmp_path: Path, model_url: str) -> AsyncIterator[tuple[Any, Editor]]:
    """`nexus acp` as a client starts it, initialized; the connection and the client."""
    editor = Editor()
    env = clean_env(
        OPENAI_BASE_URL=model_url,
        NEXUS_MODEL="scripted-model",
        PYTHONPATH=str(ROOT),  # this checkout's NEXUS, whatever is installed
    )
    with (tmp_path / "acp.stderr").open("wb") as stderr:
        async with spawn_agent_process(
            editor,
            sys.executable,
            "-m",
            "nexus_ls.cli",
            "acp",
            "--max-steps",
            "10",
            env=env,
            cwd=tmp_path,
            transport_kwargs={"stderr": stderr},
            observers=[editor.observe],
        ) as (conn, _process):
            started = await conn.initialize(
                protocol_version=PROTOCOL_VERSION,
                client_capabilities=ClientCapabilities(),
                client_info=Implementation(name="tests", version="1"),
            )
            assert started.agent_info is not None and started.agent_info.name == "nexus"
            yield conn, editor


async def test_a_prompt_is_a_run_its_steps_plan_and_diff_stream(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "calc", {"calc.py": CALC})
    server = model(
        [
            plan("in_progress", "pending", "pending"),
            call("read_file", "I read it.", path="calc.py"),
            plan("done", "in_progress", "pending"),
            call("edit_file", "The sign is wrong.", path="calc.py", old="a - b", new="a + b"),
            plan("done", "done", "in_progress"),
            call("finish", "Fixed.", summary="add adds"),
        ]
    )
    async with nexus_acp(tmp_path, server.url) as (conn, editor):
        session = await conn.new_session(cwd=str(repo), mcp_servers=[])
        answer = await conn.prompt(session_id=session.session_id, prompt=[text_block("fix add")])

    assert answer.stop_reason == "end_turn"
    starts = {u.tool_call_id: u for u in editor.of(ToolCallStart)}
    ends = {u.tool_call_id: u for u in editor.of(ToolCallProgress)}
    run_id = next(iter(starts)).split("/")[0]
    read = starts[f"{run_id}/2.1"]
    assert (read.title, read.kind, read.status) == ("read_file calc.py", "read", "in_progress")
    assert read.locations[0].path == str(repo / "calc.py")
    assert ends[f"{run_id}/2.1"].status == "completed"
    assert ends[f"{run_id}/2.1"].title == "read_file — calc.py (2 lines)"
    assert ends[f"{run_id}/6.1"].status == "completed"  # the finish call, with the answer
    # Every tool call started was ended; the plan came whole, each time it changed.
    assert set(ends) | {i for i, s in starts.items() if s.status == "completed"} == set(starts)
    plans = editor.of(AgentPlanUpdate)
    assert [[e.status for e in p.entries] for p in plans] == [
        ["in_progress", "pending", "pending"],
        ["completed", "in_progress", "pending"],
        ["completed", "completed", "in_progress"],
    ]
    assert [e.content for e in plans[0].entries] == list(STEPS)
    commit = starts[f"{run_id}/4.commit"]
    assert commit.kind == "edit" and commit.status == "completed"
    assert commit.title.startswith("commit ")
    (diff,) = commit.content
    assert isinstance(diff, FileEditToolCallContent)
    assert (diff.path, diff.old_text, diff.new_text) == (
        str(repo / "calc.py"),
        CALC,
        CALC.replace("a - b", "a + b"),
    )
    said = "".join(u.content.text for u in editor.of(AgentMessageChunk))
    assert said.startswith("NEXUS sandbox: ")
    assert f"run succeeded: add adds\n\nbranch `nexus/{run_id}`" in said
    # The run's branch holds the change; the user's tree is untouched.
    assert sh(repo, "git", "show", f"nexus/{run_id}:calc.py") == CALC.replace("a - b", "a + b")
    assert (repo / "calc.py").read_text() == CALC
    assert sh(repo, "git", "status", "--porcelain") == ""
    write_transcript(tmp_path, "prompt", editor.wire, repo)


async def test_approvals_are_permission_requests_allowed_and_rejected(
    tmp_path: Path, model, loopback
) -> None:
    repo = make_repo(tmp_path / "p", {"a.txt": "a\n"})
    connect = (
        f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {loopback.port}), 3)\""
    )
    server = model(
        [
            call("run_command", command=connect, network=True),
            call("run_command", command=connect, network=True),
            call("run_command", command="git push origin main"),
            call("finish", summary="done"),
        ]
    )
    async with nexus_acp(tmp_path, server.url) as (conn, editor):
        editor.answers = ["run", "deny"]
        session = await conn.new_session(cwd=str(repo), mcp_servers=[])
        answer = await conn.prompt(session_id=session.session_id, prompt=[text_block("use it")])

    assert answer.stop_reason == "end_turn"
    assert loopback.connections == 2  # allowed for the run: the second was not asked
    assert len(editor.questions) == 2
    (first, options), (second, _) = editor.questions
    assert [(o.option_id, o.name, o.kind) for o in options] == [
        ("once", "Allow once", "allow_once"),
        ("run", "Allow for this run", "allow_always"),
        ("deny", "Deny", "reject_once"),
    ]
    run_id = first.tool_call_id.split("/")[0]
    assert first.tool_call_id == f"{run_id}/1.1"  # the call that asks, already shown
    assert first.title.startswith(f"Run `{connect}` with network? (")
    assert "git push origin main" in second.title
    ends = {u.tool_call_id: u.status for u in editor.of(ToolCallProgress)}
    assert ends[f"{run_id}/1.1"] == "completed" and ends[f"{run_id}/2.1"] == "completed"
    assert ends[f"{run_id}/3.1"] == "failed"  # refused: not run
    told = [m for m in server.requests[-1]["messages"] if m["role"] == "tool"][-1]["content"]
    assert told.startswith("error: not run:") and "the ACP client's user" in told
    write_transcript(tmp_path, "approvals", editor.wire, repo)


async def test_cancel_during_a_run_ends_the_prompt_cancelled(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "p", {"a.txt": "a\n"})
    server = model([call("read_file", "Look first.", path="a.txt"), hang()])
    async with nexus_acp(tmp_path, server.url) as (conn, editor):
        session = await conn.new_session(cwd=str(repo), mcp_servers=[])
        prompt = asyncio.ensure_future(
            conn.prompt(session_id=session.session_id, prompt=[text_block("wait")])
        )
        # The model holds its second answer for ever: the run is in the middle of a step.
        assert await until(lambda: len(server.requests) >= 2, 20)
        await conn.cancel(session_id=session.session_id)
        answer = await asyncio.wait_for(prompt, 10)

    assert answer.stop_reason == "cancelled"
    said = "".join(u.content.text for u in editor.of(AgentMessageChunk))
    assert "run cancelled: cancelled by the user" in said


async def test_bad_input_gets_clean_errors(tmp_path: Path, model) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    repo = make_repo(tmp_path / "p", {"a.txt": "a\n"})
    server = model([])
    async with nexus_acp(tmp_path, server.url) as (conn, _editor):
        with pytest.raises(RequestError) as not_git:
            await conn.new_session(cwd=str(plain), mcp_servers=[])
        with pytest.raises(RequestError) as relative:
            await conn.new_session(cwd="p", mcp_servers=[])
        with pytest.raises(RequestError) as no_session:
            await conn.prompt(session_id="nope", prompt=[text_block("fix it")])
        session = await conn.new_session(cwd=str(repo), mcp_servers=[])
        with pytest.raises(RequestError) as no_text:
            await conn.prompt(session_id=session.session_id, prompt=[text_block("  ")])
    assert (not_git.value.code, str(not_git.value)) == (
        -32602,
        f"{plain} is not inside a git repository; run `git init` there to start, "
        "or open a folder inside a repository",
    )
    assert str(relative.value) == "cwd must be an absolute path, not 'p'"
    assert (no_session.value.code, str(no_session.value)) == (
        -32602,
        "there is no session 'nope'; start one with session/new",
    )
    assert str(no_text.value) == "the prompt has no text; say what the agent should do"
    stderr = (tmp_path / "acp.stderr").read_text()
    assert "Traceback" not in stderr
    assert server.requests == []  # nothing ran


def test_only_the_protocol_reaches_stdout(tmp_path: Path) -> None:
    """Raw JSON lines in, through pipes as a client has them: every line out is a JSON-RPC
    answer; what cannot be read is one line on stderr, never a traceback."""
    sent = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": 1}},
        "not json",
        {"jsonrpc": "2.0", "id": 2, "method": "session/new", "params": {"cwd": str(tmp_path)}},
        {"jsonrpc": "2.0", "id": 3, "method": "session/new",
         "params": {"cwd": str(tmp_path), "mcpServers": []}},
        {"jsonrpc": "2.0", "id": 4, "method": "session/load",
         "params": {"sessionId": "x", "cwd": str(tmp_path), "mcpServers": []}},
        {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": "x"}},
    ]  # fmt: skip
    lines = "".join((m if isinstance(m, str) else json.dumps(m)) + "\n" for m in sent)
    agent = subprocess.Popen(
        [sys.executable, "-m", "nexus_ls.cli", "acp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=clean_env(PYTHONPATH=str(ROOT)),
    )
    guard = threading.Timer(60, agent.kill)  # only a broken test waits this long
    guard.start()
    try:
        assert agent.stdin is not None and agent.stdout is not None
        agent.stdin.write(lines)
        agent.stdin.flush()
        out = [agent.stdout.readline() for _ in range(4)]  # the answers, in any order
        rest, stderr = agent.communicate(timeout=30)  # stdin closed: it ends
    finally:
        guard.cancel()
    assert agent.returncode == 0 and rest == ""  # nothing else on stdout
    answers = {m["id"]: m for m in map(json.loads, out)}
    assert sorted(answers) == [1, 2, 3, 4]
    assert answers[1]["result"]["agentInfo"]["name"] == "nexus"
    assert answers[2]["error"]["code"] == -32602  # no mcpServers: the schema says what is missing
    assert answers[3]["error"]["message"].endswith("is not inside a git repository; run `git init` "
                                                   "there to start, or open a folder inside a "
                                                   "repository")  # fmt: skip
    assert answers[4]["error"]["code"] == -32601  # no session/load
    assert "Traceback" not in stderr
    assert "nexus acp: Error parsing JSON-RPC message (JSONDecodeError" in stderr


def write_transcript(tmp_path: Path, name: str, wire: list[dict[str, Any]], repo: Path) -> None:
    """The session's messages, its folder made neutral: docs/editors.md quotes them
    (`NEXUS_ACP_TRANSCRIPTS=DIR` keeps a copy there)."""
    text = "\n".join(json.dumps(m) for m in wire).replace(str(repo), "/home/me/calc")
    (tmp_path / f"{name}.jsonl").write_text(text)
    if folder := os.environ.get("NEXUS_ACP_TRANSCRIPTS"):
        (Path(folder) / f"{name}.jsonl").write_text(text)
