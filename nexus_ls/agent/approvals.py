"""Asking the host whether a command may run, and waiting for the user's answer.

The question goes up the protocol stream as `ask`; the listener thread hands the
`answer` back. A cancel, or the host going away, ends the wait with a refusal.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from nexus_ls.agent import protocol


class Approvals:
    def __init__(self, channel: protocol.Channel, cancel: threading.Event) -> None:
        self.channel, self.cancel = channel, cancel
        self._ids = itertools.count(1)
        self._waiting: dict[int, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    def ask(self, request: dict[str, Any]) -> tuple[str, str]:
        """("once" | "run" | "deny", who decided) for `request`."""
        ask_id = next(self._ids)
        done, box = threading.Event(), list[dict[str, Any]]()
        with self._lock:
            self._waiting[ask_id] = (done, box)
        try:
            self.channel.send({"type": protocol.ASK, "id": ask_id, **request})
            while not done.wait(0.05):
                if self.cancel.is_set():
                    return "deny", "the run was cancelled while waiting"
        finally:
            with self._lock:
                self._waiting.pop(ask_id, None)
        answer = box[0]
        decision = answer.get("decision")
        return (decision if decision in ("once", "run") else "deny"), str(answer.get("by", "?"))

    def answer(self, message: dict[str, Any]) -> None:
        """Called from the listener thread with an `answer` message."""
        with self._lock:
            waiting = self._waiting.get(message.get("id"))  # type: ignore[arg-type]
        if waiting is not None:
            waiting[1].append(message)
            waiting[0].set()
