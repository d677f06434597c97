"""`finish`: the model says the task is done, or cannot be done."""

from __future__ import annotations

from pydantic import Field

from nexus_ls.tools.base import Args, Tool, ToolContext, ToolResult


class FinishArgs(Args):
    summary: str = Field(description="What was done and how it was checked.")
    success: bool = Field(True, description="false if the task could not be completed.")


def finish(ctx: ToolContext, summary: str, success: bool = True) -> ToolResult:
    """The loop ends the run on this result; its summary is the run's final answer, whole."""
    return ToolResult(True, summary.strip() or "finished", {"summary": summary, "success": success})


TOOLS = (
    Tool(
        "finish",
        "End the task: call this once the work is done (or cannot be done), with a summary "
        "of what changed and how it was checked.",
        FinishArgs,
        finish,
        ends_run=True,
        progress=lambda args, result: (args.summary.strip().splitlines() or ["finished"])[0],
    ),
)
