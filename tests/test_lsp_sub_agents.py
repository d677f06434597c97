"""A run tree as the editor sees it: a sub-agent's steps in its parent's progress, its end
in the editor's log, and the tree in `nexus.runs` (a real `nexus-ls` over stdio)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_lsp
from conftest import make_repo
from lsp_helpers import SERVER, Editor
from scripted_model import call
from test_sub_agents import Router, spawned


@pytest_lsp.fixture(config=SERVER)
async def editor(lsp_client: Editor) -> AsyncIterator[None]:
    yield
    await lsp_client.close()
    assert not lsp_client.handler_errors


async def test_a_sub_agents_steps_show_in_its_parents_progress(
    editor: Editor, tmp_path: Path, model
) -> None:
    repo = make_repo(tmp_path / "p", {"README.md": "x\n"})
    router = Router({
        "delegate the note": [call("spawn_agent", task="write note.txt"), call("wait_agents"),
                              lambda body: call("merge_agent", id=spawned(body)[0]),
                              call("finish", summary="the note is in")],
        "write note.txt": [call("write_file", path="note.txt", content="hi\n"),
                           call("finish", summary="note written")],
    })  # fmt: skip
    server = model([router])
    await editor.start([repo], options={"baseUrl": server.url, "maxSteps": 10})

    run_id = await editor.run("delegate the note")
    final = await editor.finished(run_id)
    await editor.progress_end("delegate the note")

    assert final["message"] == "run succeeded: the note is in"
    _, (_, *reports, _) = editor.progress("delegate the note")
    messages = [r.message for r in reports]
    assert "sub-agent 1: step 1: write_file — created note.txt (1 line)" in messages
    assert "sub-agent 1: step 2: finish — note written" in messages
    assert any(m.startswith("step 3: merge_agent — merged sub-agent") for m in messages)
    runs = await editor.command("nexus.runs", {})
    tree = {r["runId"]: r for r in runs if r["runId"].startswith(run_id)}
    assert tree[f"{run_id}-1"]["parent"] == run_id and tree[f"{run_id}-1"]["depth"] == 1
