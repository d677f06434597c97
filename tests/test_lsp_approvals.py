"""Approvals in the editor, through a real `nexus-ls`: the question comes as
window/showMessageRequest, the user's click decides, and the run's sandbox is announced."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_lsp
from conftest import make_repo
from lsp_helpers import PRESETS, SERVER, Editor
from lsprotocol import types
from scripted_model import call


@pytest_lsp.fixture(config=SERVER)
async def editor(lsp_client: Editor) -> AsyncIterator[None]:
    yield
    await lsp_client.close()
    assert not lsp_client.handler_errors


def connect(port: int) -> str:
    return f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 3)\""


@pytest.mark.parametrize("preset", PRESETS)
async def test_the_editors_user_allows_for_the_run_then_denies(
    editor: Editor, tmp_path: Path, model, loopback, preset: str
) -> None:
    repo = make_repo(tmp_path / "p", {"a.txt": "a\n"})
    server = model(
        [
            call("run_command", command=connect(loopback.port), network=True),
            call("run_command", command=connect(loopback.port), network=True),
            call("run_command", command="git push origin main"),
            call("finish", summary="done"),
        ]
    )
    editor.answers = ["Allow for this run", "Deny"]
    await editor.start([repo], preset, {"baseUrl": server.url})
    run_id = await editor.run("use the network")
    final = await editor.finished(run_id)
    assert final["message"] == "run succeeded: done"

    assert loopback.connections == 2  # allowed once for the run: the second was not asked
    assert len(editor.questions) == 2
    first, second = editor.questions
    assert first.type == types.MessageType.Warning
    assert f"NEXUS run {run_id} asks to run `{connect(loopback.port)}` with network" in (
        first.message
    )
    assert [a.title for a in first.actions or []] == ["Allow once", "Allow for this run", "Deny"]
    assert "git push origin main" in second.message
    said = [e["message"] for e in editor.run_events(run_id) if e["category"] == "command"]
    assert f"allowed for this run (the editor's user): `{connect(loopback.port)}` with network" in (
        said
    )
    assert "refused (the editor's user): `git push origin main` with network" in said
    sandbox = [m for m in editor.messages if m.message.startswith(f"NEXUS run {run_id}: sandbox")]
    assert sandbox and "bubblewrap" in sandbox[0].message


async def test_a_dismissed_question_is_a_refusal(editor: Editor, tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "p", {"a.txt": "a\n"})
    server = model([call("run_command", command="git push"), call("finish", summary="done")])
    editor.answers = [None]
    await editor.start([repo], "neovim", {"baseUrl": server.url})
    run_id = await editor.run("push")
    await editor.finished(run_id)
    told = [m for m in server.requests[-1]["messages"] if m["role"] == "tool"][0]["content"]
    assert told.startswith("error: not run:") and "dismissed the question" in told
