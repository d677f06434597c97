"""Code actions on a selection: tasks on that code that start `nexus.run` with file and range."""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from nexus_ls.server.app import NexusServer, path_of

ACTIONS = (
    ("NEXUS: Explain this", types.CodeActionKind.Empty,
     "Explain what the selected code in {file} does and why; change no files."),
    ("NEXUS: Write tests for this", types.CodeActionKind.Empty,
     "Write tests for the selected code in {file}, in the project's test style, and run them."),
    ("NEXUS: Refactor this", types.CodeActionKind.RefactorRewrite,
     "Refactor the selected code in {file} for clarity without changing its behaviour; "
     "run the tests before and after."),
)  # fmt: skip


def _json(value: Any) -> Any:
    """An lsprotocol object as the plain JSON a command argument must be."""
    from pygls.protocol import default_converter

    return default_converter().unstructure(value)


def actions(params: types.CodeActionParams) -> list[types.CodeAction]:
    uri, rng = params.text_document.uri, params.range
    if not uri.startswith("file:"):  # an untitled buffer: nothing on disk for an agent
        return []
    file = path_of(uri).name
    selected = rng.start != rng.end
    out = []
    if selected:
        for title, kind, task in ACTIONS:
            argument = {"task": task.format(file=file), "uri": uri, "range": _json(rng)}
            out.append(
                types.CodeAction(
                    title=title,
                    kind=kind,
                    command=types.Command(title=title, command="nexus.run", arguments=[argument]),
                )
            )
    for diagnostic in params.context.diagnostics:
        task = f"Fix this problem in {file} at line {diagnostic.range.start.line + 1}: " + (
            diagnostic.message
        )
        argument = {
            "task": task,
            "uri": uri,
            "range": _json(diagnostic.range),
            "diagnostics": [_json(diagnostic)],
        }
        out.append(
            types.CodeAction(
                title="NEXUS: Fix this problem",
                kind=types.CodeActionKind.QuickFix,
                diagnostics=[diagnostic],
                command=types.Command(
                    title="NEXUS: Fix this problem", command="nexus.run", arguments=[argument]
                ),
            )
        )
    return out


def kind_in(kind: str | None, wanted: str) -> bool:
    return kind is not None and (kind == wanted or kind.startswith(f"{wanted}."))


def register(server: NexusServer) -> None:
    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[
                types.CodeActionKind.Empty,
                types.CodeActionKind.RefactorRewrite,
                types.CodeActionKind.QuickFix,
            ]
        ),
    )
    def code_action(ls: NexusServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        only = params.context.only
        if only:  # kinds are hierarchical: asking for `refactor` includes `refactor.rewrite`
            return [a for a in actions(params) if any(kind_in(a.kind, k) for k in only)]
        return actions(params)
