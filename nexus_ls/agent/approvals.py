"""Asking the host whether a command may run, and waiting for the user's answer.

An `approval` request on the agent's request channel; a cancel, or the host going away,
ends the wait with a refusal.
"""

from __future__ import annotations

from typing import Any

from nexus_ls.agent.requests import HostError, NoReply, Requests


class Approvals:
    def __init__(self, requests: Requests) -> None:
        self.requests = requests

    def ask(self, request: dict[str, Any]) -> tuple[str, str]:
        """("once" | "run" | "deny", who decided) for `request`."""
        try:
            reply = self.requests.ask("approval", request)
        except NoReply:
            return "deny", "the run was cancelled while waiting"
        except HostError as exc:
            return "deny", f"the host could not ask: {exc}"
        decision = reply.get("decision")
        return (decision if decision in ("once", "run") else "deny"), str(reply.get("by", "?"))
