"""The small types every tool shares.

They live apart from the registry so tool modules can use them without importing the
registry that lists those same modules.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nexus_ls.sandbox.profile import SandboxProfile

if TYPE_CHECKING:
    from nexus_ls.tools.gate import CommandGate


@dataclass
class ToolContext:
    """Where and how a run's tools act; one per run."""

    root: Path
    command_timeout: float = 120.0
    output_limit: int = 12_000
    cancel: threading.Event | None = None
    time_left: float | None = None  # no command outlives the run's wall-time limit
    sandbox: SandboxProfile | None = None  # how commands are confined (None: unconfined)
    gate: CommandGate | None = None  # the policy and approvals (None: every command runs)
    # What commands print goes to the model with known secrets replaced (a token in a
    # remote's URL, an AWS key in a fixture): the model's endpoint is not the user's.
    scrub: Callable[[str], str] | None = None
    git_env: dict[str, str] | None = None  # GIT_DIR and GIT_WORK_TREE of the run's worktree


@dataclass
class ToolResult:
    """An observation for the model (`output`) plus details for the journal (`data`)."""

    ok: bool
    output: str
    data: dict[str, Any] = field(default_factory=dict)
    category: str = "tool"


@dataclass(frozen=True)
class Tool:
    """A tool as the model sees it (name, description, JSON schema) and the code behind it."""

    name: str
    description: str
    parameters: dict[str, Any]
    run: Callable[..., ToolResult]
    category: str = "tool"


class ToolError(ValueError):
    """A refusal the model can act on; its message becomes the observation."""


def failure(message: str, category: str = "tool", **data: Any) -> ToolResult:
    """An error observation; the prefix lets the model tell errors from results at a glance."""
    text = message if message.startswith("error: ") else f"error: {message}"
    data = {"error": text[len("error: ") :], **data}
    return ToolResult(ok=False, output=text, data=data, category=category)


REASON = {
    "type": "string",
    "description": "Optional: why you take this step; recorded in the journal and commit.",
}


def object_schema(properties: dict[str, Any], required: Iterable[str] = ()) -> dict[str, Any]:
    """A JSON schema for tool arguments; every tool also accepts `reason`."""
    return {
        "type": "object",
        "properties": {**properties, "reason": REASON},
        "required": list(required),
        "additionalProperties": False,
    }
