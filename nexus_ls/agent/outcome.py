"""How a run ends: the outcome the host journals, and the exception that ends it early."""

from __future__ import annotations

from dataclasses import dataclass, field

from nexus_ls.run_status import Reported as Status


class RunStopped(Exception):
    """Ends a run early from anywhere in a loop or plan; `status` is how it ends."""

    def __init__(self, status: Status, reason: str) -> None:
        super().__init__(reason)
        self.status: Status = status


@dataclass
class Outcome:
    status: Status
    summary: str  # the final answer, whole
    steps: int = 0
    tokens: dict[str, int] = field(default_factory=lambda: {"prompt": 0, "completion": 0})
    error: str | None = None  # why a run that did not succeed ended
