"""The small types every tool shares.

They live apart from the registry so tool modules can use them without importing the
registry that lists those same modules.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from nexus_ls.sandbox.profile import SandboxProfile
from nexus_ls.tools.kept import Outputs
from nexus_ls.validation import Strict, schema

if TYPE_CHECKING:
    from nexus_ls.sandbox.netns import RunNetwork
    from nexus_ls.tools.gate import CommandGate
    from nexus_ls.tools.services import Services

# Asks the run's host (the supervisor) and returns its answer: memory, sub-agents and
# messages live there. Raises ToolError when the host refuses or the run is ending.
Ask = Callable[[str, dict[str, Any]], dict[str, Any]]
Mode = Literal["native", "text", "guided"]  # how the model calls tools; see agent.model
ALL_MODES: frozenset[Mode] = frozenset(("native", "text", "guided"))
ToolCategory = Literal["tool", "edit", "command", "test"]  # the journal category of a call


@dataclass
class ToolContext:
    """Where and how a run's tools act; one per run."""

    root: Path
    command_timeout: float = 120.0
    output_limit: int = 12_000
    cancel: threading.Event | None = None
    time_left: float | None = None  # no command outlives the run's wall-time limit
    sandbox: SandboxProfile | None = None  # how commands are confined (None: unconfined)
    # The one network namespace all of the run's commands and services share (bubblewrap
    # with the network off; None: each command has its own, or the host's network).
    run_network: RunNetwork | None = None
    services: Services | None = None  # the run's services (`tools/services.py`), once one starts
    deploy: str | None = None  # the project's deploy command (`.nexus/policy.toml`, committed)
    gate: CommandGate | None = None  # the policy and approvals (None: every command runs)
    # What commands print goes to the model with known secrets replaced (a token in a
    # remote's URL, an AWS key in a fixture): the model's endpoint is not the user's.
    scrub: Callable[[str], str] | None = None
    git_env: dict[str, str] | None = None  # GIT_DIR and GIT_WORK_TREE of the run's worktree
    base: str | None = None  # the commit the run started from (None: HEAD at its start)
    outputs: Outputs = field(default_factory=lambda: Outputs())  # every observation, whole
    step: int = 0  # the step and the call within it being run: where `outputs` keeps them
    call: int = 1
    ask: Ask | None = None  # None: no host (a tool test); host-served tools then refuse
    inbox: Inbox = field(default_factory=lambda: Inbox())  # what the host says between turns


class Inbox:
    """Notes the host pushes to a run (a message from another agent, say), kept until
    the loop hands them to the model at its next turn."""

    def __init__(self) -> None:
        self._notes: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.arrived = threading.Event()  # set while notes wait; a waiting tool may wake on it

    def put(self, note: dict[str, Any]) -> None:
        with self._lock:
            self._notes.append(note)
            self.arrived.set()

    def take(self) -> list[dict[str, Any]]:
        """Every waiting note, oldest first; the inbox is then empty."""
        with self._lock:
            notes, self._notes = self._notes, []
            self.arrived.clear()
        return notes


@dataclass
class ToolResult:
    """An observation for the model (`output`) plus details for the journal (`data`)."""

    ok: bool
    output: str
    data: dict[str, Any] = field(default_factory=dict)
    category: ToolCategory = "tool"
    # The paths a file tool changed, when it knows them exactly (None: look at the tree).
    paths: list[str] | None = None


class Args(Strict):
    """The arguments every tool takes; a tool's own model adds its fields."""

    reason: str | None = Field(
        None, description="Optional: why you take this step; recorded in the journal and commit."
    )


def _first_line(args: Any, result: ToolResult) -> str:
    return (result.output.splitlines() or [""])[0].strip()[:160]


@dataclass(frozen=True)
class Tool:
    """One tool with every fact about it: what the model is shown (name, description, the
    schema from `args`), the code behind it, and how the loop treats its calls."""

    name: str
    description: str
    args: type[Args]
    run: Callable[..., ToolResult]  # run(ctx, **arguments) -> ToolResult
    category: ToolCategory = "tool"
    changes_files: bool = False  # a call may change the worktree: the step is committed
    ends_run: bool = False  # a successful call ends the run (its data: summary, success)
    modes: frozenset[Mode] = ALL_MODES  # where the tool is offered
    takes_reason: bool = False  # the call's `reason` is passed to `run` too (`deploy`)
    # Its output shows the model something of the project (False: it only echoes the
    # model, as `update_plan` does): the stuck detector counts outputs not seen before.
    observes: bool = True
    # One line on what a call changed, for the step's commit subject.
    subject: Callable[[Any, ToolResult], str] = _first_line
    # One line on a call's outcome, for progress and shortened history.
    progress: Callable[[Any, ToolResult], str] = _first_line

    @property
    def parameters(self) -> dict[str, Any]:
        return schema(self.args)

    def spec(self) -> dict[str, Any]:
        """The tool in the OpenAI `tools=` format."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


class ToolError(ValueError):
    """A refusal the model can act on; its message becomes the observation."""


def ask_host(ctx: ToolContext, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """The host's answer to a `kind` request; a `ToolError` if there is no host."""
    if ctx.ask is None:
        raise ToolError(f"this run has no NEXUS host to serve {kind!r}")
    return ctx.ask(kind, body)


def failure(message: str, category: ToolCategory = "tool", **data: Any) -> ToolResult:
    """An error observation; the prefix lets the model tell errors from results at a glance."""
    text = message if message.startswith("error: ") else f"error: {message}"
    data = {"error": text[len("error: ") :], **data}
    return ToolResult(ok=False, output=text, data=data, category=category)
