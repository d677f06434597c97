"""The host's side of `remember` and `recall`: checking what an agent sent and answering.

Agents never touch the memory file; they ask, and the host (which holds the lock and the
journal) answers. A bad body is a `NexusError`: the model reads it as the tool's error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from nexus_ls.errors import NexusError

from .workspace import WorkspaceMemory

Handler = Callable[[Any, dict[str, Any]], dict[str, Any]]  # (the asking run's handle, body)


class Host(Protocol):
    def serve(self, kind: str, handler: Handler) -> None: ...


def serve_memory(host: Host, memory: WorkspaceMemory) -> None:
    """Answer the agents' `remember` and `recall` requests from `memory`."""
    host.serve("remember", lambda handle, body: remember(memory, _run_of(handle), body))
    host.serve("recall", lambda handle, body: recall(memory, _run_of(handle), body))


def remember(memory: WorkspaceMemory, run_id: str | None, body: dict[str, Any]) -> dict[str, Any]:
    text, tags = body.get("text"), body.get("tags")
    if not isinstance(text, str):
        raise NexusError("remember needs `text`: the lesson, as a string")
    if tags is None:
        tags = []
    if not isinstance(tags, list):
        raise NexusError("`tags` must be a list of words")
    lesson, new = memory.add(text, tags, run=run_id, kind="remembered")
    return {"lesson": memory.public(lesson), "new": new}


def recall(memory: WorkspaceMemory, run_id: str | None, body: dict[str, Any]) -> dict[str, Any]:
    query = body.get("query")
    if not isinstance(query, str):
        raise NexusError("recall needs `query`: a few words on what you want to know")
    return {"query": query, "lessons": memory.recall(run_id, query)}


def _run_of(handle: Any) -> str | None:
    record = getattr(handle, "record", None)
    run = getattr(record, "id", None)
    return run if isinstance(run, str) else None
