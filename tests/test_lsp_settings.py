"""Settings from initializationOptions and workspace/configuration; bad ones warned and replaced."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from conftest import make_repo
from lsp_helpers import PRESETS, SERVER, Editor
from lsprotocol import types
from scripted_model import call

from nexus_ls.config import Limits


@pytest_lsp.fixture(config=SERVER)
async def editor(lsp_client: Editor) -> AsyncIterator[None]:
    yield
    await lsp_client.close()
    assert not lsp_client.handler_errors


async def started_with(editor: Editor, task: str) -> dict[str, Any]:
    """The settings a run started with, from its first event, once the run has ended."""
    run_id = await editor.run(task)
    await editor.finished(run_id)
    return editor.run_events(run_id)[0]["data"]


async def test_invalid_settings_are_named_and_the_defaults_still_work(
    editor: Editor, tmp_path: Path, model
) -> None:
    repo = make_repo(tmp_path / "p", {"a.txt": "a\n"})
    server = model([call("finish", summary="fine")])
    options = {"baseUrl": server.url, "maxSteps": "ten", "wallTime": -5, "colour": "red"}
    await editor.start([repo], options=options)

    warnings = await editor.until(lambda: editor.shown("NEXUS: nexus."), "the warnings")
    assert len(warnings) == 3
    assert "nexus.maxSteps = 'ten' is not valid; using 40" in warnings[0]
    assert "nexus.wallTime = -5 is not valid; using 1800.0" in warnings[1]
    assert (
        "nexus.colour is not a setting (known: baseUrl, candidates, commandTimeout" in warnings[2]
    )
    assert all(m.type == types.MessageType.Warning for m in editor.messages[:3])

    data = await started_with(editor, "carry on")
    assert data["limits"]["max_steps"] == Limits.max_steps
    assert data["limits"]["wall_time"] == Limits.wall_time
    assert data["model"]["base_url"] == server.url  # the good setting was kept
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("preset", "asks"), [*((p, True) for p in PRESETS), ("neovim@v0.7.0", False)]
)
async def test_settings_from_workspace_configuration_win(
    editor: Editor, tmp_path: Path, model, preset: str, asks: bool
) -> None:
    repo = make_repo(tmp_path / "p", {"a.txt": "a\n"})
    from_options = model([call("finish", summary="from options")])
    from_configuration = model([call("finish", summary="from configuration")])
    editor.set_configuration({"baseUrl": from_configuration.url, "maxSteps": 3}, section="nexus")
    await editor.start([repo], preset, {"baseUrl": from_options.url, "maxSteps": 2})
    if asks:
        await editor.until(lambda: editor.configuration_requests, "workspace/configuration")
    await editor.command("nexus.runs", {})  # a round trip: the answer has been applied

    data = await started_with(editor, "which model?")

    used, unused = (
        (from_configuration, from_options) if asks else (from_options, from_configuration)
    )
    assert data["model"]["base_url"] == used.url
    assert data["limits"]["max_steps"] == (3 if asks else 2)
    assert len(used.requests) == 1 and unused.requests == []


async def test_changed_configuration_is_pulled_or_taken_as_sent(
    editor: Editor, tmp_path: Path, model
) -> None:
    repo = make_repo(tmp_path / "p", {"a.txt": "a\n"})
    server = model([call("finish", summary="one"), call("finish", summary="two")])
    await editor.start([repo], options={"baseUrl": server.url})
    await editor.until(lambda: editor.configuration_requests, "workspace/configuration")

    editor.set_configuration({"baseUrl": server.url, "maxSteps": 7}, section="nexus")
    editor.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    await editor.until(lambda: editor.configuration_requests == 2, "a second pull")
    await editor.command("nexus.runs", {})
    assert (await started_with(editor, "first"))["limits"]["max_steps"] == 7

    sent = {"nexus": {"baseUrl": server.url, "maxSteps": "many", "commandTimeout": 9}}
    editor.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=sent))
    await editor.until(lambda: editor.shown("nexus.maxSteps = 'many'"), "the warning")
    limits = (await started_with(editor, "second"))["limits"]
    assert (limits["max_steps"], limits["command_timeout"]) == (Limits.max_steps, 9)
    assert editor.configuration_requests == 2  # settings that came with the change were used


async def test_configuration_adds_to_the_initialization_options(
    editor: Editor, tmp_path: Path, model
) -> None:
    repo = make_repo(tmp_path / "p", {"a.txt": "a\n"})
    server = model([call("finish", summary="fine")])
    editor.set_configuration({"maxSteps": 3, "baseUrl": None}, section="nexus")
    await editor.start([repo], "neovim", {"baseUrl": server.url, "commandTimeout": 30})
    await editor.until(lambda: editor.configuration_requests, "workspace/configuration")
    await editor.command("nexus.runs", {})

    run_id = await editor.run("layered")
    await editor.saw(run_id, lambda e: e["message"].startswith("run started"), "the start")
    data = editor.run_events(run_id)[0]["data"]
    assert data["model"]["base_url"] == server.url  # unset in the configuration: kept
    assert (data["limits"]["max_steps"], data["limits"]["command_timeout"]) == (3, 30)
    assert (await editor.finished(run_id))["message"] == "run succeeded: fine"
