"""Shutdown with a run going, a server started afterwards, and several workspace folders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_lsp
from conftest import live_processes, make_repo, nexus
from lsp_helpers import PRESETS, SERVER, SOURCE, Editor, branch_file, branches
from scripted_model import call


@pytest_lsp.fixture(config=SERVER)
async def editor(lsp_client: Editor) -> AsyncIterator[None]:
    yield
    await lsp_client.close()
    assert not lsp_client.handler_errors


async def cli(repo: Path, *args: str) -> list[dict]:
    """`nexus ... --json` from a terminal next to the editor, run off the test's loop."""
    result = await asyncio.to_thread(nexus, repo, *args, "--json", PYTHONPATH=SOURCE)
    assert result.code == 0, result.stderr
    return result.json() if args[0] == "runs" else result.lines()


def running(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" not in status.read_text()
    except OSError:
        return False


@pytest.mark.parametrize("preset", PRESETS)
async def test_shutdown_interrupts_a_run_and_a_new_server_lists_it(
    editor: Editor, tmp_path: Path, model, preset: str
) -> None:
    repo = make_repo(tmp_path / "p", {"a.txt": "a\n"})
    server = model(
        [
            call("write_file", path="a.txt", content="changed\n"),
            call("run_command", command="exec sleep 6017"),
            call("finish", summary="never"),
        ]
    )
    await editor.start([repo], preset, {"baseUrl": server.url, "commandTimeout": 600})
    run_id = await editor.run("wait a while")
    await editor.saw(run_id, lambda e: "run_command" in e["message"], "the command")
    worktree = repo / ".git" / "nexus" / "worktrees" / run_id

    await editor.close()  # shutdown + exit, with the run still going

    # If the command got as far as starting, it was stopped.
    assert not [pid for pid in live_processes("sleep 6017") if running(pid)]
    runs = await cli(repo, "runs")
    assert [(r["id"], r["status"]) for r in runs] == [(run_id, "interrupted")]
    assert runs[0]["error"] == "the host stopped before the run ended"
    events = await cli(repo, "log", "--run", run_id)
    assert events[-1]["message"].startswith("run interrupted")

    later = await SERVER.start()
    assert isinstance(later, Editor)
    try:
        await later.start([repo], preset, {"baseUrl": server.url}, root_only=True)
        listed = await later.command("nexus.runs", {})
        assert [(r["runId"], r["status"]) for r in listed] == [(run_id, "interrupted")]
        assert f"nexus/{run_id}" in branches(repo) and worktree.is_dir()
        assert branch_file(repo, f"nexus/{run_id}", "a.txt") == "changed\n"  # work kept
        diff = await later.command("nexus.diff", {"runId": run_id})
        assert "+changed" in diff
    finally:
        await later.close()
        await later.stop()


async def test_each_workspace_folder_has_its_own_state(
    editor: Editor, tmp_path: Path, model
) -> None:
    first = make_repo(tmp_path / "first", {"a.txt": "first\n"})
    second = make_repo(tmp_path / "second", {"b.txt": "second\n"})
    server = model(
        [
            call("finish", summary="looked"),
            call("write_file", path="b.txt", content="SECOND\n"),
            call("finish", summary="shouted"),
        ]
    )
    await editor.start([first, second], options={"baseUrl": server.url})

    in_first = await editor.run("look")  # no file: the first folder
    await editor.finished(in_first)
    in_second = await editor.run("shout", uri=(second / "b.txt").as_uri())
    await editor.finished(in_second)

    listed = await editor.command("nexus.runs", {})
    assert [r["runId"] for r in listed] == [in_second, in_first]
    for repo, mine, other in ((first, in_first, in_second), (second, in_second, in_first)):
        log = await editor.command("nexus.log", {"uri": repo.as_uri()})
        assert {e["run"] for e in log} == {mine}
        assert [r["id"] for r in await cli(repo, "runs")] == [mine]
        assert f"nexus/{mine}" in branches(repo) and f"nexus/{other}" not in branches(repo)
        assert (repo / ".git" / "nexus" / "runs" / f"{mine}.json").is_file()

    await editor.command("nexus.accept", {"runId": in_second})
    assert (second / "b.txt").read_text() == "SECOND\n"
    assert (first / "a.txt").read_text() == "first\n"
    shown = await editor.command("nexus.show", {"runId": in_second})
    assert shown["uri"].startswith((second / ".git" / "nexus").as_uri())
