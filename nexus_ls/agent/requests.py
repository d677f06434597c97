"""The agent asks, the host answers: one request/reply channel up the protocol stream.

Approvals use it today ("may this command run?"); memory, sub-agents and messages each
become a tool plus a request kind, with no new plumbing. The listener thread hands each
`reply` to the thread waiting on it; a cancel, or the host going away, ends the wait.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from nexus_ls.agent import protocol

POLL = 0.05  # how often a waiting request looks at the cancel flag


class NoReply(Exception):
    """The run was cancelled (or the host went away) before the host replied."""


class HostError(Exception):
    """The host could not serve the request; the message says why."""


class Requests:
    def __init__(self, channel: protocol.Channel, cancel: threading.Event) -> None:
        self.channel, self.cancel = channel, cancel
        self._ids = itertools.count(1)
        self._waiting: dict[int, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    def ask(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """The host's reply body to a `kind` request; `NoReply` if the run ends first,
        `HostError` if the host refused it."""
        request_id = next(self._ids)
        done, box = threading.Event(), list[dict[str, Any]]()
        with self._lock:
            self._waiting[request_id] = (done, box)
        try:
            self.channel.send(
                {"type": protocol.REQUEST, "id": request_id, "kind": kind, "body": body}
            )
            while not done.wait(POLL):
                if self.cancel.is_set():
                    raise NoReply("the run was cancelled while waiting for the host")
        finally:
            with self._lock:
                self._waiting.pop(request_id, None)
        reply = box[0]
        if reply.get("error"):
            raise HostError(str(reply["error"]))
        result = reply.get("body")
        return result if isinstance(result, dict) else {}

    def reply(self, message: dict[str, Any]) -> None:
        """Called from the listener thread with a `reply` message."""
        with self._lock:
            waiting = self._waiting.get(message.get("id"))  # type: ignore[arg-type]
        if waiting is not None:
            waiting[1].append(message)
            waiting[0].set()
