"""Bad arguments, unknown runs and non-git folders: JSON-RPC errors that say what to fix,
and a server that keeps working afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from conftest import make_repo
from lsp_helpers import SERVER, Editor, span
from pygls.exceptions import JsonRpcException
from scripted_model import call

ONE_OBJECT = "NEXUS commands take exactly one object argument"
RANGE = "range must look like"
BAD: list[tuple[str, list[Any], str]] = [
    ("nexus.run", [], ONE_OBJECT),
    ("nexus.run", ["fix it"], ONE_OBJECT),
    ("nexus.run", [{"task": "a"}, {"task": "b"}], ONE_OBJECT),
    ("nexus.run", [{}], "missing argument: task"),
    ("nexus.run", [{"task": 5}], "task must be a non-empty string"),
    ("nexus.run", [{"task": "   "}], "task must be a non-empty string"),
    ("nexus.run", [{"task": "fix \ud800 this"}], "task is not valid UTF-8 text"),
    ("nexus.run", [{"task": "x", "uri": 5}], "uri must be a string"),
    ("nexus.run", [{"task": "x", "uri": "https://example.com/a.py"}], "is not a file"),
    ("nexus.run", [{"task": "x", "uri": "file:///elsewhere/a.py"}], "not inside an open workspace"),
    ("nexus.run", [{"task": "x", "uri": "<calc>/../../../etc/hostname", "range": span(0, 1)}],
     "not inside an open workspace"),
    ("nexus.run", [{"task": "x", "uri": "<calc>/%2e%2e/%2e%2e/%2e%2e/etc/hostname"}],
     "not inside an open workspace"),
    ("nexus.run", [{"task": "x", "uri": "file:///tmp/a%00b"}], "no NUL"),
    ("nexus.run", [{"task": "x", "uri": "<calc>", "range": {"start": {"line": 1e400},
     "end": {"line": 2}}}], RANGE),
    ("nexus.run", [{"task": "x", "uri": "<calc>", "range": "1:3"}], RANGE),
    ("nexus.run", [{"task": "x", "uri": "<calc>", "range": {"start": {"line": "a"}}}], RANGE),
    ("nexus.run", [{"task": "x", "uri": "<calc>", "range": span(3, 1)}], "ends before it starts"),
    ("nexus.run", [{"task": "x", "uri": "<calc>", "range": span(0, 1), "diagnostics": 5}],
     "diagnostics must be a list"),
    ("nexus.cancel", [{"runId": "nope"}], "no run matches 'nope'"),
    ("nexus.cancel", [{"runId": 42}], "runId must be a non-empty string"),
    ("nexus.cancel", [{"runId": ""}], "runId must be a non-empty string"),
    ("nexus.show", [{}], "missing argument: runId"),
    ("nexus.show", [{"runId": "nope"}], "no run matches 'nope'"),
    ("nexus.diff", [{"runId": "nope"}], "no run matches 'nope'"),
    ("nexus.accept", [{"runId": "nope"}], "no run matches 'nope'"),
    ("nexus.discard", [{"runId": ["x"]}], "runId must be a non-empty string"),
    ("nexus.runs", [{}, {}], ONE_OBJECT),
    ("nexus.log", [{"level": "LOUD"}], "level must be one of DEBUG, INFO, WARNING, ERROR"),
    ("nexus.log", [{"category": "gossip"}], "category must be one of"),
    ("nexus.log", [{"limit": -1}], "limit must be a whole number"),
    ("nexus.log", [{"since": "the dawn of time"}], "since: invalid time"),
    ("nexus.log", [{"since": "99999999999d"}], "before the year 1"),
    ("nexus.log", [{"uri": 7}], "uri must be a string"),
    ("nexus.export", [{}], "missing argument: format"),
    ("nexus.export", [{"format": "pdf"}], "format must be one of jsonl, md, html"),
]  # fmt: skip


@pytest_lsp.fixture(config=SERVER)
async def editor(lsp_client: Editor) -> AsyncIterator[None]:
    yield
    await lsp_client.close()
    assert not lsp_client.handler_errors


async def test_bad_arguments_get_clear_errors_and_the_server_keeps_working(
    editor: Editor, tmp_path: Path, model
) -> None:
    repo = make_repo(tmp_path / "p", {"calc.py": "def add(a, b):\n    return a - b\n"})
    server = model([call("finish", summary="still here")])
    await editor.start([repo], options={"baseUrl": server.url})
    calc = (repo / "calc.py").as_uri()

    for command, arguments, expected in BAD:
        arguments = [
            {k: calc + v[6:] if str(v).startswith("<calc>") else v for k, v in a.items()}
            if isinstance(a, dict)
            else a
            for a in arguments
        ]
        with pytest.raises(JsonRpcException) as error:
            await editor.command(command, *arguments)
        assert expected in str(error.value), (command, arguments)
        assert "Traceback" not in str(error.value)

    assert await editor.command("nexus.runs", {}) == []  # no bad start left a run behind
    run_id = await editor.run("are you still there?")
    assert (await editor.finished(run_id))["message"] == "run succeeded: still here"
    assert server.requests and len(server.requests) == 1  # no bad call reached the model


async def test_a_non_git_folder_gets_an_error_that_says_how_to_start(
    editor: Editor, tmp_path: Path, model
) -> None:
    plain = tmp_path / "notes"
    plain.mkdir()
    (plain / "todo.txt").write_text("buy milk\n")
    repo = make_repo(tmp_path / "p", {"calc.py": "x = 1\n"})
    server = model([call("finish", summary="ok")])
    await editor.start([plain, repo], options={"baseUrl": server.url})

    with pytest.raises(JsonRpcException, match="git init"):
        await editor.run("tidy up")  # no uri: the first folder
    with pytest.raises(JsonRpcException, match="git init"):
        await editor.run("tidy up", uri=(plain / "todo.txt").as_uri())
    with pytest.raises(JsonRpcException, match="git init"):
        await editor.command("nexus.log", {"uri": plain.as_uri()})
    assert not (plain / ".git").exists()  # nothing was made in the user's folder

    # The git folder next to it works as usual.
    run_id = await editor.run("check", uri=(repo / "calc.py").as_uri())
    await editor.finished(run_id)
    assert [r["runId"] for r in await editor.command("nexus.runs", {})] == [run_id]
