"""A run's plan as the user watches it: in the editor's progress (a real `nexus-ls` over
stdio, a real run against the scripted HTTP model) and in `nexus show`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_lsp
from conftest import make_repo, nexus
from lsp_helpers import SERVER, Editor
from scripted_model import ScriptedModel, call

CALC = "def add(a, b):\n    return a - b\n"
STEPS = ("read calc.py", "fix add()", "check the fix")


def plan(*statuses: str) -> dict[str, Any]:
    steps = [{"text": t, "status": s} for t, s in zip(STEPS, statuses, strict=True)]
    return call("update_plan", "My plan.", steps=steps)


SCRIPT = [
    plan("in_progress", "pending", "pending"),
    call("read_file", "I read it.", path="calc.py"),
    plan("done", "in_progress", "pending"),
    call("edit_file", "The sign is wrong.", path="calc.py", old="a - b", new="a + b"),
    plan("done", "done", "in_progress"),
    call("read_file", "I check it.", path="calc.py"),
    call("finish", "Fixed.", summary="add adds"),
]


@pytest_lsp.fixture(config=SERVER)
async def editor(lsp_client: Editor) -> AsyncIterator[None]:
    yield
    await lsp_client.close()
    assert not lsp_client.handler_errors


async def test_the_plan_reaches_lsp_progress(editor: Editor, tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "p", {"calc.py": CALC})
    server = model(SCRIPT)
    await editor.start([repo], options={"baseUrl": server.url, "maxSteps": 10})

    run_id = await editor.run("fix add")
    final = await editor.finished(run_id)
    end = await editor.progress_end("fix add")

    assert final["message"] == "run succeeded: add adds"
    _, (begin, *reports, _) = editor.progress("fix add")
    messages = [r.message for r in reports]
    # Each new plan is reported by its current step; every later step comes after it.
    assert messages == [
        "step 1: update_plan — 3 steps, 0 done",
        "plan 1/3: read calc.py",
        "plan 1/3: read calc.py · step 2: read_file — calc.py (2 lines)",
        "step 3: update_plan — 3 steps, 1 done",
        "plan 2/3: fix add()",
        "plan 2/3: fix add() · step 4: edit_file — edited calc.py: lines 2-2 replaced "
        "(exact match)",
        messages[6],  # the step's commit
        "step 5: update_plan — 3 steps, 2 done",
        "plan 3/3: check the fix",
        "plan 3/3: check the fix · step 6: read_file — calc.py (2 lines)",
        "plan 3/3: check the fix · step 7: finish — add adds",
    ]
    assert messages[6].startswith("plan 2/3: fix add() · step 4: commit ")
    assert end.message == "succeeded: add adds"
    # The same plan, whole, in the journal events the editor got.
    plans = [e for e in editor.run_events(run_id) if "plan" in e["data"]]
    assert [e["data"]["current"] for e in plans] == [1, 2, 3]
    assert plans[-1]["data"]["plan"][0] == {"text": "read calc.py", "status": "done"}


def test_nexus_show_prints_the_latest_plan(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p", {"calc.py": CALC})
    with ScriptedModel(SCRIPT) as server:
        ran = nexus(repo, "run", "fix add", "--json", "--base-url", server.url)
    assert ran.code == 0, ran.stderr
    run_id = ran.json()["run_id"]
    assert "nexus: step 3: plan 2/3: fix add()" in ran.stderr  # the progress lines say it too

    shown = nexus(repo, "show", run_id)
    assert shown.code == 0, shown.stderr
    story = shown.stdout
    assert "  plan     1/3: read calc.py\n" in story
    assert "  plan     3/3: check the fix\n" in story
    assert (
        "\nPlan (as of step 5):\n  [x] read calc.py\n  [x] fix add()\n  [>] check the fix\n"
    ) in story
    assert "\nMetrics: 7 steps, 7 tool calls, " in story
    assert "time per tool: " in story
