"""Acting on the worktree: one tool call bounded by the run's time and journaled, and
each step's change committed with a subject that says what changed.

The model's loop and guided mode's harness both act through `Actions`, so the journal,
the progress lines and the step commits read the same whoever chose the call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from nexus_ls.agent.budget import Budget
from nexus_ls.agent.model import ToolCall, Turn, tool_arguments
from nexus_ls.journal.events import Category, Level
from nexus_ls.journal.shapes import ToolCallData
from nexus_ls.tools import ToolContext, ToolResult, call_tool, get_tool
from nexus_ls.tools.registry import parse_arguments


class Emit(Protocol):
    def __call__(
        self,
        level: Level,
        category: Category,
        message: str,
        *,
        step: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> None: ...


@dataclass
class Change:
    """What one step changed, for its commit: the subject says what, not which tool."""

    step: int
    subject: str
    rationale: str
    tools: list[str]
    paths: list[str] | None  # exactly these paths, or None: look at the whole tree
    diff: str | None = None  # the tools' own diff of those paths (None: ask git)


OnChange = Callable[[Change], "str | None"]  # -> a note for the model (what was left out)
Called = tuple[ToolCall, ToolResult]


class Actions:
    def __init__(
        self, ctx: ToolContext, budget: Budget, emit: Emit, on_change: OnChange | None
    ) -> None:
        self.ctx, self.budget, self.emit, self.on_change = ctx, budget, emit, on_change

    def execute(
        self, step: int, call: ToolCall, turn: Turn, index: int = 1, cleanup: bool = False
    ) -> ToolResult:
        """One tool call, bounded by the run's time, journaled (a call that ends the run is
        journaled by the loop, as the run's answer). A `cleanup` call runs even once the run
        must stop, with a few seconds of its own: it puts back what a failed try changed."""
        if not cleanup:
            self.budget.check()
        left = self.budget.remaining() if not cleanup else max(self.budget.remaining(), 10.0)
        self.ctx.command_timeout = min(self.budget.limits.command_timeout, left)
        self.ctx.time_left = left
        self.ctx.step, self.ctx.call = step, index
        started = time.monotonic()
        result = call_tool(self.ctx, call.name, call.arguments)
        charge = result.data.get("charge")  # what sub-agents spent counts against this run
        if isinstance(charge, dict):
            self.budget.charge(int(charge.get("steps") or 0), int(charge.get("tokens") or 0))
        ms = int((time.monotonic() - started) * 1000)
        self.budget.metrics.call(call.name, ms, result.ok)
        tool = get_tool(call.name)
        if not (tool is not None and tool.ends_run and result.ok):
            self.record(step, call, turn, result, ms)
        return result

    def commit(
        self, step: int, turn: Turn, changed: list[Called], named_by_words: bool = True
    ) -> str | None:
        """Commit what the step's file-changing calls did; the note for the model about
        what was left out, if any. `named_by_words`: the turn's words may be the subject
        (a model's are; a harness's own notes are not)."""
        changed = [(c, r) for c, r in changed if _changes_files(c)]
        if not changed or self.on_change is None:
            return None
        return self.on_change(self.change(step, turn, changed, named_by_words))

    def change(
        self, step: int, turn: Turn, changed: list[Called], named_by_words: bool = True
    ) -> Change:
        subjects = [self.subject(call, result) for call, result in changed]
        paths: list[str] | None = []
        for _, result in changed:
            paths = None if paths is None or result.paths is None else [*paths, *result.paths]
        # The model's first sentence, else the call's own reason, else what the tools did.
        reasons = [_reason(call) for call, _ in changed]
        words = " ".join(turn.text.split()).split(". ")[0].rstrip(".:") if named_by_words else ""
        listed = "; ".join(subjects)
        subject = words or next((r for r in reasons if r), "") or listed
        why = "\n\n".join(dict.fromkeys(r for r in [turn.text.strip(), *reasons] if r))
        if " ".join(why.split()).rstrip(".") == subject:  # the subject says it all already
            why = ""
        bullets = "\n".join(f"- {s}" for s in subjects) if subject != listed else ""
        body = "\n\n".join(part for part in (why, bullets) if part)
        diffs = [str(r.data.get("diff") or "") for _, r in changed]
        whole = paths is not None and len(set(paths)) == len(paths) and all(diffs)
        diff = "".join(
            f"diff --git a/{p} b/{p}\n{d}" for p, d in zip(paths or [], diffs, strict=False)
        )
        tools = [call.name for call, _ in changed]
        return Change(step, subject, body, tools, paths, diff if whole else None)

    def record(self, step: int, call: ToolCall, turn: Turn, result: ToolResult, ms: int) -> None:
        data = ToolCallData(
            tool=call.name,
            arguments=tool_arguments(call),
            ok=result.ok,
            result=result.output,
            duration_ms=ms,
            rationale=turn.text,
            call=self.ctx.call,
            details=result.data,
        )
        self.emit(
            "INFO" if result.ok else "WARNING",
            result.category,
            f"step {step}: {call.name} — {self.outline(call, result)}",
            step=step,
            data=dict(data),
        )

    def outline(self, call: ToolCall, result: ToolResult) -> str:
        """One line on a call's outcome, in the tool's own words (errors as they came)."""
        first = (result.output.splitlines() or [""])[0].strip()[:160]
        tool = get_tool(call.name)
        if tool is None or not result.ok:
            return first
        try:
            return tool.progress(parse_arguments(tool, call.arguments), result)[:160]
        except Exception:  # a progress line must never end a run
            return first

    def subject(self, call: ToolCall, result: ToolResult) -> str:
        """What one call changed, in its tool's words."""
        tool = get_tool(call.name)
        try:
            return tool.subject(parse_arguments(tool, call.arguments), result) if tool else ""
        except Exception:
            return call.name


def _changes_files(call: ToolCall) -> bool:
    tool = get_tool(call.name)
    return tool is not None and tool.changes_files


def _reason(call: ToolCall) -> str:
    args = tool_arguments(call)
    reason = args.get("reason") if isinstance(args, dict) else None
    return " ".join(reason.split()) if isinstance(reason, str) else ""
