"""Code actions on a selection, and the run one of them starts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from conftest import make_repo
from lsp_helpers import PRESETS, SERVER, Editor, first_prompt
from lsprotocol import types
from pygls.protocol import default_converter
from scripted_model import call

CALC = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
SELECTION = types.Range(types.Position(0, 0), types.Position(2, 0))
PROBLEM = types.Diagnostic(
    range=types.Range(types.Position(1, 11), types.Position(1, 16)),
    message="add subtracts",
    severity=types.DiagnosticSeverity.Error,
    source="lint",
)


@pytest_lsp.fixture(config=SERVER)
async def editor(lsp_client: Editor) -> AsyncIterator[None]:
    yield
    await lsp_client.close()
    assert not lsp_client.handler_errors


def json(value: Any) -> Any:
    return default_converter().unstructure(value)


async def code_actions(
    editor: Editor,
    target: str,
    rng: types.Range,
    diagnostics: list[types.Diagnostic],
    only: list[types.CodeActionKind] | None = None,
) -> list[types.CodeAction]:
    found = await editor.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=target),
            range=rng,
            context=types.CodeActionContext(diagnostics=diagnostics, only=only),
        )
    )
    assert found is not None and all(isinstance(a, types.CodeAction) for a in found)
    return list(found)  # type: ignore[arg-type]


@pytest.mark.parametrize("preset", PRESETS)
async def test_a_selection_offers_tasks_and_a_fix_that_start_runs(
    editor: Editor, tmp_path: Path, model, preset: str
) -> None:
    repo = make_repo(tmp_path / "p", {"calc.py": CALC})
    server = model([call("finish", summary="fixed")])
    await editor.start([repo], preset, {"baseUrl": server.url})
    target = editor.open(repo / "calc.py")

    actions = await code_actions(editor, target, SELECTION, [PROBLEM])

    assert [(a.title, a.kind) for a in actions] == [
        ("NEXUS: Explain this", types.CodeActionKind.Empty),
        ("NEXUS: Write tests for this", types.CodeActionKind.Empty),
        ("NEXUS: Refactor this", types.CodeActionKind.RefactorRewrite),
        ("NEXUS: Fix this problem", types.CodeActionKind.QuickFix),
    ]
    for action in actions:
        assert action.command is not None and action.command.command == "nexus.run"
        (argument,) = action.command.arguments or []
        assert argument["uri"] == target and "calc.py" in argument["task"]
    selection_args = [a.command.arguments[0] for a in actions[:3]]  # type: ignore[union-attr,index]
    assert all(arg["range"] == json(SELECTION) for arg in selection_args)
    fix = actions[3]
    assert list(fix.diagnostics or []) == [PROBLEM]
    fix_argument = fix.command.arguments[0]  # type: ignore[union-attr,index]
    assert fix_argument["range"] == json(PROBLEM.range)
    assert fix_argument["diagnostics"] == [json(PROBLEM)]
    assert fix_argument["task"] == "Fix this problem in calc.py at line 2: add subtracts"

    # The fix, run as the editor runs a chosen action.
    started = await editor.command("nexus.run", *fix.command.arguments)  # type: ignore[union-attr,misc]
    await editor.finished(started["runId"])
    prompt = first_prompt(server.requests)
    assert prompt.startswith("About the project:\n")  # the starting context, then the task
    prompt = prompt[prompt.index("Task: ") :]
    assert prompt.startswith("Task: Fix this problem in calc.py at line 2: add subtracts")
    assert "calc.py, lines 2-2 (selected in the editor):\n```\n    return a - b\n```" in prompt
    assert "- line 2: lint: add subtracts" in prompt


async def test_a_cursor_gets_only_the_fix_and_only_filters(
    editor: Editor, tmp_path: Path, model
) -> None:
    repo = make_repo(tmp_path / "p", {"calc.py": CALC})
    await editor.start([repo], options={"baseUrl": model([]).url})
    target = editor.open(repo / "calc.py")
    cursor = types.Range(types.Position(1, 12), types.Position(1, 12))

    assert await code_actions(editor, target, cursor, []) == []
    on_problem = await code_actions(editor, target, cursor, [PROBLEM])
    assert [a.title for a in on_problem] == ["NEXUS: Fix this problem"]
    only_fixes = await code_actions(
        editor, target, SELECTION, [PROBLEM], only=[types.CodeActionKind.QuickFix]
    )
    assert [a.title for a in only_fixes] == ["NEXUS: Fix this problem"]
    only_refactors = await code_actions(
        editor, target, SELECTION, [PROBLEM], only=[types.CodeActionKind.Refactor]
    )
    assert [a.title for a in only_refactors] == ["NEXUS: Refactor this"]
    # A buffer that is not a file on disk gets no NEXUS actions, and no error either.
    assert await code_actions(editor, "untitled:Untitled-1", SELECTION, [PROBLEM]) == []
