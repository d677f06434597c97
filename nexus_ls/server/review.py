"""nexus.show, nexus.diff, nexus.accept and nexus.discard: reviewing a run from the editor.

Accept respects open editors: a buffer with unsaved changes is merged with the run's
change and updated through workspace/applyEdit, and if the two conflict nothing at all
is changed and the file is named.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.uris import from_fs_path

from nexus_ls.journal import timeline
from nexus_ls.runs import RunRecord
from nexus_ls.sandbox import blob_text, changed_paths, merge_texts, net_diff
from nexus_ls.server.app import NexusServer, off_loop, one_object, path_of, user_error
from nexus_ls.supervisor import Supervisor


def write_report(supervisor: Supervisor, record: RunRecord) -> Path:
    """A readable report of the run: task, each step with rationale, tool, result, diff,
    and its final answer whole (the timeline's outcome)."""
    events = supervisor.journal.query(run=record.id)
    diff = net_diff(supervisor.ws, record.base, supervisor.head(record)) if record.base else ""
    story = timeline(events)
    text = (
        f"# NEXUS run {record.id}\n\nTask: {record.task}\n\nStatus: {record.status}"
        f"{f' ({record.review})' if record.review else ''}\n\n"
        f"{fenced(story, 'text')}\n\n## Net diff\n\n{fenced(diff or '(no change)', 'diff')}\n"
    )
    reports = supervisor.ws.state_dir / "reports"
    reports.mkdir(exist_ok=True)
    path = reports / f"{record.id}.md"
    path.write_text(text, encoding="utf-8")
    return path


def fenced(text: str, info: str) -> str:
    """`text` as a Markdown code block whose fence no run of backticks in it can close
    (a model's answer often holds its own ``` blocks)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text.rstrip(chr(10))}\n{fence}"


def buffer_updates(
    ls: NexusServer, supervisor: Supervisor, record: RunRecord
) -> dict[str, tuple[str, str | None]]:
    """For each open document the run changes: (uri -> its text now, merged text for a dirty
    buffer or None to take the file as accepted). Raises, naming the file, on a conflict."""
    root = supervisor.ws.root
    head = supervisor.head(record)
    changed = set(changed_paths(supervisor.ws, record.base, head))
    updates: dict[str, tuple[str, str | None]] = {}
    for uri, document in list(ls.workspace.text_documents.items()):
        try:
            rel = path_of(uri).resolve().relative_to(root).as_posix()
        except (ValueError, Exception):
            continue
        if rel not in changed:
            continue
        on_disk = root / rel
        disk = on_disk.read_text(errors="surrogateescape") if on_disk.is_file() else None
        if document.source == disk:
            updates[uri] = (document.source, None)
            continue
        base = blob_text(supervisor.ws, record.base, rel) or ""
        theirs = blob_text(supervisor.ws, head, rel) or ""
        merged = merge_texts(document.source, base, theirs)
        if merged is None:
            raise user_error(
                f"accept refused: {rel} has unsaved changes in the editor that conflict with "
                f"run {record.id}; save or undo them first. Nothing was changed."
            )
        updates[uri] = (document.source, merged)
    return updates


def whole(text: str) -> types.Range:
    """The range of a whole document: to the end of its last line (UTF-16 columns)."""
    last = text.rsplit("\n", 1)[-1]
    end = types.Position(text.count("\n"), len(last.encode("utf-16-le")) // 2)
    return types.Range(types.Position(0, 0), end)


def register(server: NexusServer) -> None:
    @server.command("nexus.show")
    async def show(ls: NexusServer, *args: Any) -> dict[str, str]:
        supervisor, record = ls.find_run(one_object(args, "runId")["runId"])
        path = await off_loop(write_report, supervisor, record)
        uri = from_fs_path(str(path)) or path.as_uri()
        window = ls.client_capabilities.window
        if window and window.show_document and window.show_document.support:
            await ls.window_show_document_async(types.ShowDocumentParams(uri=uri, take_focus=True))
        return {"uri": uri}

    @server.command("nexus.diff")
    async def diff(ls: NexusServer, *args: Any) -> str:
        supervisor, record = ls.find_run(one_object(args, "runId")["runId"])
        return str(
            await off_loop(lambda: net_diff(supervisor.ws, record.base, supervisor.head(record)))
        )

    @server.command("nexus.accept")
    async def accept(ls: NexusServer, *args: Any) -> dict[str, Any]:
        supervisor, record = ls.find_run(one_object(args, "runId")["runId"])
        await off_loop(supervisor.reviewable, record.id)
        workspace = ls.client_capabilities.workspace
        can_edit = bool(workspace and workspace.apply_edit)
        updates = await off_loop(buffer_updates, ls, supervisor, record) if can_edit else {}
        record, paths = await off_loop(supervisor.accept, record.id)
        edited = []
        for uri, (before, merged) in updates.items():
            after = merged
            if after is None:
                target = path_of(uri)
                after = target.read_text(errors="surrogateescape") if target.exists() else ""
            if after == before:
                continue
            edit = types.TextEdit(range=whole(before), new_text=after)
            try:
                result = await ls.workspace_apply_edit_async(
                    types.ApplyWorkspaceEditParams(
                        edit=types.WorkspaceEdit(changes={uri: [edit]}),
                        label=f"NEXUS: accept run {record.id}",
                    )
                )
            except Exception as exc:  # the files on disk are accepted whatever the editor says
                result = types.ApplyWorkspaceEditResult(applied=False, failure_reason=str(exc))
            if result is not None and result.applied:
                edited.append(uri)
            else:
                reason = getattr(result, "failure_reason", None) or "the editor refused the edit"
                ls.window_show_message(
                    types.ShowMessageParams(
                        type=types.MessageType.Warning,
                        message=f"NEXUS: {path_of(uri).name} was changed on disk but its open "
                        f"buffer was not updated: {reason}",
                    )
                )
        return {"runId": record.id, "files": paths, "buffers": edited}

    @server.command("nexus.discard")
    async def discard(ls: NexusServer, *args: Any) -> dict[str, Any]:
        supervisor, record = ls.find_run(one_object(args, "runId")["runId"])
        record = await off_loop(supervisor.discard, record.id)
        return {"runId": record.id, "discarded": True}
