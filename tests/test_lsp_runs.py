"""nexus.run, nexus.cancel and nexus.runs through a real `nexus-ls`, with its live view."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_lsp
from conftest import make_repo, sh
from lsp_helpers import PRESETS, SERVER, Editor, branch_file, by_task, first_prompt, span
from lsprotocol import types
from scripted_model import call

CALC = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
FIX = call("edit_file", "The sign is wrong.", path="calc.py", old="a - b", new="a + b")
SLEEP = call("run_command", "This takes a while.", command="sleep 60")


@pytest_lsp.fixture(config=SERVER)
async def editor(lsp_client: Editor) -> AsyncIterator[None]:
    yield
    await lsp_client.close()
    assert not lsp_client.handler_errors


@pytest.mark.parametrize("preset", PRESETS)
async def test_run_streams_progress_events_and_ends_with_the_change_on_its_branch(
    editor: Editor, tmp_path: Path, model, preset: str
) -> None:
    repo = make_repo(tmp_path / "p", {"calc.py": CALC})
    server = model([FIX, call("finish", "Fixed.", summary="add adds")])
    await editor.start([repo], preset, {"baseUrl": server.url, "maxSteps": 5})

    run_id = await editor.run("fix add")
    final = await editor.finished(run_id)
    end = await editor.progress_end("fix add")

    assert final["message"] == "run succeeded: add adds"
    token, values = editor.progress("fix add")
    assert token in editor.created_tokens  # made with window/workDoneProgress/create
    begin, *reports, _ = values
    messages = [r.message for r in reports]
    assert messages[0] == "step 1: edit_file — edited calc.py: lines 2-2 replaced (exact match)"
    assert messages[-1] == "step 2: finish — add adds"
    assert all(m.startswith(("step 1: ", "step 2: ")) for m in messages)
    assert end.message == "succeeded: add adds"

    # Every journal event of the run came as nexus/event, in order, with its runId.
    journal = await editor.command("nexus.log", {"runId": run_id})
    assert [e["id"] for e in editor.run_events(run_id)] == [e["id"] for e in journal]
    assert all(e["runId"] == run_id == e["event"]["run"] for e in editor.events)
    assert journal[0]["message"] == "run started: fix add"
    (told,) = [m for m in editor.messages if m.message.startswith(f"NEXUS run {run_id} ")]
    assert told.type == types.MessageType.Info
    assert told.message.startswith(f"NEXUS run {run_id} succeeded: add adds — review it with")

    branch = f"nexus/{run_id}"
    assert "return a + b" in branch_file(repo, branch, "calc.py")
    assert (repo / "calc.py").read_text() == CALC  # the user's tree waits for accept
    runs = await editor.command("nexus.runs", {})
    assert runs[0] | {"created": ""} == {
        "runId": run_id,
        "task": "fix add",
        "status": "succeeded",
        "branch": branch,
        "created": "",
        "review": None,
        "parent": None,
        "depth": 0,
        "base": journal[0]["data"]["base"],
        "head": sh(repo, "git", "rev-parse", branch).strip(),
    }
    assert runs[0]["created"].endswith("Z")


async def test_a_selection_gives_the_agent_its_text_path_and_diagnostics(
    editor: Editor, tmp_path: Path, model
) -> None:
    repo = make_repo(tmp_path / "p", {"src/calc.py": CALC})
    server = model([call("finish", summary="explained")])
    await editor.start([repo], options={"baseUrl": server.url})
    # The buffer has an unsaved line: the agent sees what the user sees.
    buffer = CALC.replace("def mul", "# unsaved note\ndef mul")
    target = editor.open(repo / "src" / "calc.py", buffer)
    inside = {"range": span(1, 1, 16), "message": "wrong operator", "source": "lint"}
    outside = {"range": span(6, 6, 16), "message": "far away problem"}

    run_id = await editor.run(
        "explain this",
        uri=target,
        range=span(0, 5),  # ends at column 0 of line 5: lines 1-5
        diagnostics=[inside, outside],
    )
    await editor.finished(run_id)

    prompt = first_prompt(server.requests)
    assert prompt.startswith("About the project:\n")  # the starting context, then the task
    prompt = prompt[prompt.index("Task: explain this") :]
    assert "src/calc.py, lines 1-5" in prompt
    assert "def add(a, b):\n    return a - b\n\n\n# unsaved note\n```" in prompt
    assert "def mul" not in prompt
    assert "- line 2: lint: wrong operator" in prompt
    assert "far away problem" not in prompt
    assert str(repo) not in prompt  # relative paths only


async def test_cancel_mid_run(editor: Editor, tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "p", {"calc.py": CALC})
    server = model([SLEEP, call("finish", summary="never")])
    await editor.start([repo], options={"baseUrl": server.url, "commandTimeout": 600})
    run_id = await editor.run("wait a while")
    await editor.saw(run_id, lambda e: "run_command" in e["message"], "the command to start")
    with pytest.raises(Exception, match=f"run {run_id} is still running; wait for it or cancel"):
        await editor.command("nexus.accept", {"runId": run_id})
    assert (await editor.command("nexus.runs", {}))[0]["status"] == "running"

    assert await editor.command("nexus.cancel", {"runId": run_id}) == {
        "runId": run_id,
        "cancelling": True,
    }
    final = await editor.finished(run_id)
    end = await editor.progress_end("wait a while")

    assert final["message"].startswith("run cancelled")
    assert end.message.startswith("cancelled")
    runs = await editor.command("nexus.runs", {})
    assert runs[0]["status"] == "cancelled"
    with pytest.raises(Exception, match="already ended: cancelled"):
        await editor.command("nexus.cancel", {"runId": run_id})
    assert len(server.requests) == 1  # it never asked the model again


@pytest.mark.parametrize("preset", PRESETS)
async def test_cancel_from_the_progress_ui(
    editor: Editor, tmp_path: Path, model, preset: str
) -> None:
    repo = make_repo(tmp_path / "p", {"calc.py": CALC})
    server = model([SLEEP, call("finish", summary="never")])
    await editor.start([repo], preset, {"baseUrl": server.url, "commandTimeout": 600})
    run_id = await editor.run("wait a while")
    await editor.saw(run_id, lambda e: "run_command" in e["message"], "the command to start")
    token, _ = editor.progress("wait a while")

    editor.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))

    assert (await editor.finished(run_id))["message"].startswith("run cancelled")
    assert (await editor.progress_end("wait a while")).message.startswith("cancelled")


@pytest.mark.parametrize("preset", PRESETS)
async def test_two_runs_at_once_each_with_its_own_progress(
    editor: Editor, tmp_path: Path, model, preset: str
) -> None:
    repo = make_repo(tmp_path / "p", {"a.txt": "alpha\n", "b.txt": "beta\n"})
    script = by_task(
        {
            "task A": [
                call("write_file", path="a.txt", content="ALPHA\n"),
                call("finish", summary="A done"),
            ],
            "task B": [
                call("write_file", path="b.txt", content="BETA\n"),
                call("finish", summary="B done"),
            ],
        }
    )
    server = model([script])
    await editor.start([repo], preset, {"baseUrl": server.url})

    first = await editor.run("task A")
    second = await editor.run("task B")
    ends = [await editor.finished(first), await editor.finished(second)]

    assert [e["message"] for e in ends] == ["run succeeded: A done", "run succeeded: B done"]
    assert (await editor.progress_end("task A")).message == "succeeded: A done"
    assert (await editor.progress_end("task B")).message == "succeeded: B done"
    assert editor.progress("task A")[0] != editor.progress("task B")[0]
    assert branch_file(repo, f"nexus/{first}", "a.txt") == "ALPHA\n"
    assert branch_file(repo, f"nexus/{first}", "b.txt") == "beta\n"
    assert branch_file(repo, f"nexus/{second}", "b.txt") == "BETA\n"
    assert branch_file(repo, f"nexus/{second}", "a.txt") == "alpha\n"
    runs = await editor.command("nexus.runs")
    assert [r["runId"] for r in runs] == [second, first]  # newest first


async def test_a_client_without_progress_still_gets_events_and_the_outcome(
    editor: Editor, tmp_path: Path, model
) -> None:
    repo = make_repo(tmp_path / "p", {"calc.py": CALC})
    server = model([])  # no replies: the model endpoint answers 400 and the run fails
    capabilities = types.ClientCapabilities(window=types.WindowClientCapabilities())
    await editor.start([repo], options={"baseUrl": server.url}, capabilities=capabilities)

    run_id = await editor.run("fix add")
    final = await editor.finished(run_id)

    assert final["message"].startswith("run failed: ") and final["level"] == "ERROR"
    assert editor.created_tokens == [] and editor.progress_reports == {}
    told = await editor.until(lambda: editor.shown(f"NEXUS run {run_id} failed: "), "message")
    assert "the test script has no more replies" in told[0]
    assert editor.messages[-1].type == types.MessageType.Warning


async def test_a_damaged_record_is_listed_and_refused_by_name(
    editor: Editor, tmp_path: Path, model
) -> None:
    repo = make_repo(tmp_path / "p", {"calc.py": CALC})
    server = model([call("finish", "Nothing to do.", summary="done")])
    await editor.start([repo], "neovim", {"baseUrl": server.url})
    run_id = await editor.run("look")
    await editor.finished(run_id)
    damaged = "20200101-000000000-bad0"
    (repo / ".git" / "nexus" / "runs" / f"{damaged}.json").write_text('{"id": "x"')

    runs = await editor.command("nexus.runs", {})

    assert [(r["runId"], r["status"]) for r in runs] == [
        (run_id, "succeeded"),
        (damaged, "damaged"),
    ]
    assert runs[1]["error"].startswith("it is not JSON")
    with pytest.raises(Exception, match=f"run {damaged}'s record is damaged"):
        await editor.command("nexus.accept", {"runId": damaged})
