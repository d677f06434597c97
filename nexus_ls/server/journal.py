"""nexus.log and nexus.export: the journal from the editor, searched off the event loop."""

from __future__ import annotations

from typing import Any

from nexus_ls.journal import CATEGORIES, LEVELS, export, parse_since
from nexus_ls.server.app import NexusServer, off_loop, one_object, user_error
from nexus_ls.supervisor import Supervisor

FORMATS = ("jsonl", "md", "html")


def filters(ls: NexusServer, params: dict[str, Any]) -> tuple[Supervisor, dict[str, Any]]:
    """The journal to search and its filters, each checked with a message naming the key."""
    supervisor = ls.state_for(params.get("uri")).require()
    found: dict[str, Any] = {}
    if params.get("runId"):
        supervisor, record = ls.find_run(params["runId"])
        found["run"] = record.id
    level = params.get("level")
    if level is not None:
        if not isinstance(level, str) or level.upper() not in LEVELS:
            raise user_error(f"level must be one of {', '.join(LEVELS)}")
        found["level"] = level.upper()
    category = params.get("category")
    if category is not None and category not in CATEGORIES:
        raise user_error(f"category must be one of {', '.join(CATEGORIES)}")
    found["category"] = category
    if params.get("grep") is not None:
        found["grep"] = str(params["grep"])
    if params.get("since") is not None:
        try:
            found["since"] = parse_since(str(params["since"]))
        except ValueError as exc:
            raise user_error(f"since: {exc}") from None
    limit = params.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise user_error("limit must be a whole number, 0 or more")
    found["limit"] = limit
    return supervisor, found


def register(server: NexusServer) -> None:
    @server.command("nexus.log")
    async def log(ls: NexusServer, *args: Any) -> list[dict[str, Any]]:
        supervisor, found = filters(ls, one_object(args) if args else {})
        return list(await off_loop(lambda: supervisor.journal.query(**found)))

    @server.command("nexus.export")
    async def export_(ls: NexusServer, *args: Any) -> str:
        params = one_object(args, "format")
        if params["format"] not in FORMATS:
            raise user_error(f"format must be one of {', '.join(FORMATS)}")
        supervisor, found = filters(ls, {"runId": params.get("runId"), "uri": params.get("uri")})
        events = await off_loop(lambda: supervisor.journal.query(**found))
        return export(events, params["format"])
