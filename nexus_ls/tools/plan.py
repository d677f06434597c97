"""`update_plan`: the model writes down its plan, and keeps it up to date as it works.

The tool only checks and echoes the plan; the loop keeps it (`data["plan"]`), journals it
and shows it back to the model after every step, so it outlives shortened history.
"""

from __future__ import annotations

from pydantic import Field

from nexus_ls.journal.progress import checklist
from nexus_ls.journal.shapes import PlanStatus, PlanStepData
from nexus_ls.tools.base import Args, Tool, ToolContext, ToolError, ToolResult
from nexus_ls.validation import Strict

NAME = "update_plan"
MAX_STEPS = 20  # steps in one plan: a plan longer than this is not a plan
MAX_TEXT = 200  # characters of one step's text


class PlanStep(Strict):
    text: str = Field(description="What this step does, in a few words.")
    status: PlanStatus = Field(description="pending, in_progress (at most one step) or done.")


class PlanArgs(Args):
    steps: list[PlanStep] = Field(
        description=f"The whole plan, in order (1 to {MAX_STEPS} steps); it replaces the last."
    )


def update_plan(ctx: ToolContext, steps: list[dict[str, str]]) -> ToolResult:
    plan = checked(steps)
    done = sum(1 for s in plan if s["status"] == "done")
    lines = "\n".join(checklist(plan))
    output = f"plan updated: {done} of {len(plan)} done\n{lines}"
    return ToolResult(True, output, {"plan": plan})


def checked(steps: list[dict[str, str]]) -> list[PlanStepData]:
    """The plan, or a `ToolError` saying what to fix."""
    if not steps:
        raise ToolError("a plan needs at least one step")
    if len(steps) > MAX_STEPS:
        raise ToolError(
            f"a plan has at most {MAX_STEPS} steps, not {len(steps)}; merge small steps"
        )
    plan: list[PlanStepData] = []
    for number, step in enumerate(steps, 1):
        text = " ".join(str(step["text"]).split())
        if not text:
            raise ToolError(f"step {number} has no text; say what the step does")
        if len(text) > MAX_TEXT:
            raise ToolError(f"step {number} is {len(text)} characters; keep each under {MAX_TEXT}")
        plan.append(PlanStepData(text=text, status=step["status"]))  # type: ignore[typeddict-item]
    busy = [n for n, s in enumerate(plan, 1) if s["status"] == "in_progress"]
    if len(busy) > 1:
        shown = ", ".join(map(str, busy))
        raise ToolError(f"at most one step may be in_progress, not steps {shown}")
    return plan


def _progress(args: PlanArgs, result: ToolResult) -> str:
    """`3 steps, 1 done`: the loop's own plan event that follows says which is current."""
    plan = result.data.get("plan") or []
    return f"{len(plan)} steps, {sum(1 for s in plan if s['status'] == 'done')} done"


TOOLS = (
    Tool(
        NAME,
        "Write down your plan for the task, or update it as you go: the whole list of steps "
        "each time, each with its status (pending, in_progress, done), at most one in "
        "progress. The user watches it; you see it after every step. Worth it for a task of "
        "several steps; skip it for a one-step task.",
        PlanArgs,
        update_plan,
        modes=frozenset(("native", "text")),
        progress=_progress,
        observes=False,
    ),
)
