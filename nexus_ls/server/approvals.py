"""Approvals in the editor: a command the policy asks about becomes a question the user
answers with a click (`window/showMessageRequest`): allow once, for this run, or deny.

The supervisor asks from one of its threads; the question is sent from the event loop
and the thread waits for the answer, so the loop never blocks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

from lsprotocol import types

from nexus_ls.journal.printable import one_line
from nexus_ls.runs import RunRecord
from nexus_ls.server.app import NexusServer

ACTIONS = {"Allow once": "once", "Allow for this run": "run", "Deny": "deny"}
ANSWER_TIMEOUT = 3600.0  # a question nobody answers for an hour is a refusal


def register(server: NexusServer) -> None:
    async def ask(record: RunRecord, request: dict[str, Any]) -> tuple[str, str]:
        network = " with network" if request.get("network") else ""
        message = (
            f"NEXUS run {record.id} asks to run `{one_line(str(request.get('command', '')))}`"
            f"{network} ({one_line(str(request.get('reason', '')))}). Allow it?"
        )
        params = types.ShowMessageRequestParams(
            type=types.MessageType.Warning,
            message=message,
            actions=[types.MessageActionItem(title=title) for title in ACTIONS],
        )
        result = await server.window_show_message_request_async(params)
        if result is None:
            return "deny", "the editor's user dismissed the question"
        return ACTIONS.get(result.title, "deny"), "the editor's user"

    def approve(record: RunRecord, request: dict[str, Any]) -> tuple[str, str]:
        loop = server.loop
        if loop is None or loop.is_closed():
            return "deny", "the editor is gone"
        future = asyncio.run_coroutine_threadsafe(ask(record, request), loop)
        try:
            return future.result(timeout=ANSWER_TIMEOUT)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return "deny", f"no answer in the editor within {ANSWER_TIMEOUT:g} s"

    server.approver = approve
