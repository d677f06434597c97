"""Reviewing a run from the editor: show, diff, accept (open buffers included) and discard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_lsp
from conftest import make_repo, sh
from lsp_helpers import PRESETS, SERVER, Editor, branches
from pygls.exceptions import JsonRpcException
from scripted_model import call

CALC = (
    "def add(a, b):\n    return a - b\n\n\n"
    "def mul(a, b):\n    return a * b\n\n\n"
    "def div(a, b):\n    return a / b\n"
)
FIXED = CALC.replace("a - b", "a + b")
UTIL = "def double(x):\n    return x + x\n"
SCRIPT = [
    call("edit_file", "The sign is wrong.", path="calc.py", old="a - b", new="a + b"),
    call("edit_file", "Clearer as a product.", path="util.py", old="x + x", new="2 * x"),
    call("finish", "Both fixed.", summary="fixed add and double"),
]


@pytest_lsp.fixture(config=SERVER)
async def editor(lsp_client: Editor) -> AsyncIterator[None]:
    yield
    await lsp_client.close()
    assert not lsp_client.handler_errors


async def finished_run(editor: Editor, repo: Path, model, preset: str) -> str:
    server = model(list(SCRIPT))
    await editor.start([repo], preset, {"baseUrl": server.url})
    run_id = await editor.run("fix add")
    assert (await editor.finished(run_id))["message"] == "run succeeded: fixed add and double"
    return run_id


@pytest.mark.parametrize("preset", PRESETS)
async def test_accept_updates_disk_and_open_buffers_keeping_unsaved_text(
    editor: Editor, tmp_path: Path, model, preset: str
) -> None:
    repo = make_repo(tmp_path / "p", {"calc.py": CALC, "util.py": UTIL})
    head = sh(repo, "git", "rev-parse", "HEAD")
    run_id = await finished_run(editor, repo, model, preset)
    # calc.py is open with an unsaved change far from the run's; util.py is open and clean.
    calc = editor.open(repo / "calc.py", CALC.replace("a / b", "a // b"))
    util = editor.open(repo / "util.py")

    diff = await editor.command("nexus.diff", {"runId": run_id})
    assert "-    return a - b\n+    return a + b" in diff and "+    return 2 * x" in diff
    result = await editor.command("nexus.accept", {"runId": run_id})

    assert result == {"runId": run_id, "files": ["calc.py", "util.py"], "buffers": [calc, util]}
    assert (repo / "calc.py").read_text() == FIXED  # unsaved text stays in the editor only
    assert (repo / "util.py").read_text() == "def double(x):\n    return 2 * x\n"
    assert editor.buffers[calc] == FIXED.replace("a / b", "a // b")
    assert editor.buffers[util] == "def double(x):\n    return 2 * x\n"
    assert {e.label for e in editor.applied_edits} == {f"NEXUS: accept run {run_id}"}
    assert sh(repo, "git", "rev-parse", "HEAD") == head
    assert sh(repo, "git", "diff", "--cached", "--name-only") == ""  # the index is the user's
    runs = await editor.command("nexus.runs", {})
    assert runs[0]["review"] == "accepted"
    log = await editor.command(
        "nexus.log", {"runId": run_id, "grep": "accepted", "category": "run"}
    )
    assert [e["message"] for e in log] == ["run accepted: 2 files changed"]


async def test_a_conflicting_unsaved_buffer_refuses_accept_then_discard_cleans_up(
    editor: Editor, tmp_path: Path, model
) -> None:
    repo = make_repo(tmp_path / "p", {"calc.py": CALC, "util.py": UTIL})
    run_id = await finished_run(editor, repo, model, "neovim")
    mine = CALC.replace("a - b", "b - a")  # the very line the run changed
    calc = editor.open(repo / "calc.py", mine)

    with pytest.raises(JsonRpcException, match=r"accept refused: calc\.py has unsaved changes"):
        await editor.command("nexus.accept", {"runId": run_id})

    assert (repo / "calc.py").read_text() == CALC
    assert (repo / "util.py").read_text() == UTIL  # nothing changed, not even other files
    assert editor.buffers[calc] == mine and editor.applied_edits == []
    assert (await editor.command("nexus.runs", {}))[0]["review"] is None

    worktree = next((repo / ".git" / "nexus" / "worktrees").iterdir())
    assert f"nexus/{run_id}" in branches(repo) and worktree.is_dir()
    assert await editor.command("nexus.discard", {"runId": run_id}) == {
        "runId": run_id,
        "discarded": True,
    }
    assert f"nexus/{run_id}" not in branches(repo)
    assert not worktree.exists()
    assert (repo / "calc.py").read_text() == CALC
    assert (await editor.command("nexus.runs", {}))[0]["review"] == "discarded"
    log = await editor.command(
        "nexus.log", {"runId": run_id, "grep": "discarded", "category": "run"}
    )
    assert "+    return a + b" in log[-1]["data"]["diff"]  # the journal keeps the change
    with pytest.raises(JsonRpcException, match="was discarded"):
        await editor.command("nexus.accept", {"runId": run_id})


@pytest.mark.parametrize(
    ("preset", "opens"), [*((p, True) for p in PRESETS), ("neovim@v0.7.0", False)]
)
async def test_show_writes_a_report_and_opens_it(
    editor: Editor, tmp_path: Path, model, preset: str, opens: bool
) -> None:
    repo = make_repo(tmp_path / "p", {"calc.py": CALC, "util.py": UTIL})
    run_id = await finished_run(editor, repo, model, preset)

    shown = await editor.command("nexus.show", {"runId": run_id[:12]})  # a unique prefix

    if opens:
        assert [(d.uri, d.take_focus) for d in editor.shown_documents] == [(shown["uri"], True)]
    else:  # this client cannot show documents: the uri is returned, nothing is asked
        assert editor.shown_documents == []
    report = Path(shown["uri"].removeprefix("file://")).read_text()
    assert f"# NEXUS run {run_id}" in report
    assert "Task: fix add" in report
    assert "Step 1" in report and "thought  The sign is wrong." in report  # rationale
    assert "edit     calc.py" in report and "commit   " in report
    assert "Step 2" in report and "thought  Clearer as a product." in report
    assert "step 3: finish — fixed add and double" in report
    assert "-    return a - b\n+    return a + b" in report
    assert sh(repo, "git", "status", "--porcelain") == ""  # nothing in the working tree


async def test_the_report_keeps_a_long_final_answer_whole(
    editor: Editor, tmp_path: Path, model
) -> None:
    # A review's answer, over 5,000 characters on 100 lines, with a fenced block of its own.
    answer = "\n".join(
        ["These edge cases are not handled:", ""]
        + [f"- edge case {n}: div({n}, 0) and {'mul ' * (n % 9)}overflow" for n in range(110)]
        + ["", "Example:", "```python", "div(1, 0)", "```", "", "One line: " + "x" * 400]
    )
    assert len(answer) > 5000
    repo = make_repo(tmp_path / "p", {"calc.py": CALC})
    server = model([call("read_file", "I read it.", path="calc.py"),
                    call("finish", "Reviewed.", summary=answer)])  # fmt: skip
    await editor.start([repo], options={"baseUrl": server.url})
    run_id = await editor.run("review calc.py")
    await editor.finished(run_id)

    shown = await editor.command("nexus.show", {"runId": run_id})

    report = Path(shown["uri"].removeprefix("file://")).read_text()
    first, *rest = answer.splitlines()
    assert f"  status   succeeded: {first}\n" in report
    gutter = " " * 13 + "| "
    assert "\n".join(gutter + line for line in rest) in report  # every line, none cut
    # The answer's own ``` cannot end the report's code block: its fence is longer.
    assert report.count("\n````text\n") == 1 and "\n```python\n" not in report
    assert "## Net diff\n\n```diff\n(no change)\n```" in report
    assert await editor.command("nexus.diff", {"runId": run_id}) == ""
