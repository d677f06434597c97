"""nexus.memory: the workspace's memory from the editor.

One command, one object argument: `{action: "list" | "show" | "add" | "forget" | "recall",
id?, text?, tags?, query?, uri?}` (`uri` picks the workspace folder). Work is done off the
event loop; a bad argument is a JSON-RPC error naming it.
"""

from __future__ import annotations

from typing import Any

from nexus_ls.memory import Lesson, WorkspaceMemory
from nexus_ls.server.app import NexusServer, off_loop, one_object, user_error

ACTIONS = ("list", "show", "add", "forget", "recall")


def lesson_json(lesson: Lesson) -> dict[str, Any]:
    return {**lesson.to_json(), "strength": round(lesson.strength(), 4),
            "offered": lesson.offered(), "line": lesson.line()}  # fmt: skip


def text_arg(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value.strip():
        raise user_error(f"{params.get('action')} needs `{name}`, a non-empty string")
    return value


def act(memory: WorkspaceMemory, params: dict[str, Any]) -> Any:
    action = params["action"]
    if action == "list":
        return [lesson_json(lesson) for lesson in memory.lessons()]
    if action == "show":
        return lesson_json(memory.get(text_arg(params, "id")))
    if action == "add":
        tags = params.get("tags", [])
        if not isinstance(tags, list):
            raise user_error("tags must be a list of words")
        lesson, new = memory.add(text_arg(params, "text"), tags)
        return {**lesson_json(lesson), "new": new}
    if action == "forget":
        return lesson_json(memory.forget(text_arg(params, "id")))
    return memory.recall(None, text_arg(params, "query"))


def register(server: NexusServer) -> None:
    @server.command("nexus.memory")
    async def memory(ls: NexusServer, *args: Any) -> Any:
        params = one_object(args, "action")
        if params["action"] not in ACTIONS:
            raise user_error(f"action must be one of {', '.join(ACTIONS)}")
        supervisor = ls.state_for(params.get("uri")).require()
        return await off_loop(act, supervisor.memory, params)
