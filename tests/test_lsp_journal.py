"""nexus.log and nexus.export: the journal searched and exported from the editor."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_lsp
from conftest import make_repo
from lsp_helpers import SERVER, Editor
from scripted_model import call


@pytest_lsp.fixture(config=SERVER)
async def editor(lsp_client: Editor) -> AsyncIterator[None]:
    yield
    await lsp_client.close()
    assert not lsp_client.handler_errors


async def test_log_filters_and_export_formats(editor: Editor, tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "p", {"calc.py": "def add(a, b):\n    return a - b\n"})
    server = model(
        [
            call("read_file", "Where is <b>it</b>?", path="missing.py"),
            call("edit_file", path="calc.py", old="a - b", new="a + b"),
            call("finish", summary="first"),
            call("finish", summary="second"),
        ]
    )
    await editor.start([repo], options={"baseUrl": server.url})
    first = await editor.run("fix add")
    await editor.finished(first)
    second = await editor.run("look around")
    await editor.finished(second)

    everything = await editor.command("nexus.log", {})
    assert {e["run"] for e in everything} == {first, second}
    mine = await editor.command("nexus.log", {"runId": first})
    assert mine == [e for e in everything if e["run"] == first]
    assert mine[0]["message"] == "run started: fix add"

    edits = await editor.command("nexus.log", {"runId": first, "category": "edit"})
    assert edits and all(e["category"] == "edit" for e in edits)
    warnings = await editor.command("nexus.log", {"level": "warning"})
    assert warnings == [e for e in everything if e["level"] in ("WARNING", "ERROR")]
    assert any("read_file" in e["message"] and "missing.py" in e["message"] for e in warnings)
    assert warnings and all(e["level"] in ("WARNING", "ERROR") for e in warnings)
    grep = await editor.command("nexus.log", {"grep": "missing.py"})
    assert grep and all("missing.py" in json.dumps(e) for e in grep)
    assert await editor.command("nexus.log", {"limit": 2}) == everything[-2:]
    assert await editor.command("nexus.log", {"since": "1h"}) == everything
    assert await editor.command("nexus.log", {"since": "2999-01-01"}) == []

    jsonl = await editor.command("nexus.export", {"runId": second, "format": "jsonl"})
    assert [json.loads(line) for line in jsonl.splitlines()] == [
        e for e in everything if e["run"] == second
    ]
    md = await editor.command("nexus.export", {"runId": first, "format": "md"})
    assert md.startswith("# NEXUS journal\n")
    rows = [line for line in md.splitlines() if line.startswith(f"| {mine[0]['ts'][:4]}")]
    assert len(rows) == len(mine) and all(f"| {first} |" in row for row in rows)
    html = await editor.command("nexus.export", {"format": "html"})
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert html.count("<tr") == len(everything) + 1  # a header row and one per event
    assert "&lt;b&gt;it&lt;/b&gt;" in html and "<b>it</b>" not in html  # model text escaped
