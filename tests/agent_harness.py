"""Running the agent loop in-process on a real git repository, for fast tests.

The tools, step commits and journal events are the product's own; only the model is
scripted (`InProcessModel`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inprocess_model import InProcessModel, Step

from nexus_ls.agent.guided import GuidedAgent
from nexus_ls.agent.loop import Agent
from nexus_ls.agent.outcome import Outcome
from nexus_ls.agent.step_commits import StepCommits
from nexus_ls.config import Limits
from nexus_ls.journal import Redactor
from nexus_ls.sandbox.commits import CommitGuard
from nexus_ls.tools import ToolContext
from nexus_ls.tools.base import Ask, Inbox


@dataclass
class Ran:
    outcome: Outcome
    model: InProcessModel
    events: list[dict[str, Any]] = field(default_factory=list)

    def messages(self, category: str | None = None) -> list[str]:
        return [e["message"] for e in self.events if category in (None, e["category"])]


def run_agent(
    repo: Path,
    script: list[Step],
    task: str = "do the task",
    *,
    limits: Limits | None = None,
    guided: bool = False,
    starting: str = "",
    window: int | None = None,
    output_limit: int = 12_000,
    keep_turns: int | None = None,
    ask: Ask | None = None,
    inbox: Inbox | None = None,
) -> Ran:
    """One run of the loop (or guided mode) in `repo`, committing each step there;
    `ask` stands for the host that serves requests, `inbox` holds its notes."""
    model = InProcessModel(script, window=window)
    events: list[dict[str, Any]] = []

    def emit(level: str, category: str, message: str, *, step: int | None = None,
             data: dict[str, Any] | None = None) -> None:  # fmt: skip
        events.append({"level": level, "category": category, "message": message,
                       "step": step, "data": data or {}})  # fmt: skip

    ctx = ToolContext(root=repo, output_limit=output_limit, ask=ask, inbox=inbox or Inbox())
    commits = StepCommits(repo, None, "run-test", CommitGuard(), Redactor(environ={}), emit)
    limits = limits or Limits()
    agent = (GuidedAgent if guided else Agent)(model, ctx, limits, emit, commits, window)
    if keep_turns is not None and isinstance(agent, Agent):
        agent.keep_turns = keep_turns
    outcome = agent.run(task) if guided else agent.run(task, "", starting)
    return Ran(outcome, model, events)
