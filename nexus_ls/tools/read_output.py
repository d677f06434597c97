"""`read_output`: the rest of an observation that was cut to fit the model's view."""

from __future__ import annotations

from pydantic import Field

from nexus_ls.tools.base import Args, Tool, ToolContext, ToolError, ToolResult
from nexus_ls.tools.output import numbered


class ReadOutputArgs(Args):
    step: int = Field(ge=1, description="The step whose output to read.")
    call: int = Field(1, ge=1, description="Which call of that step, when it made several.")
    start_line: int = Field(1, ge=1, description="First line to show (1-based).")
    end_line: int | None = Field(None, ge=1, description="Last line to show (inclusive).")


def read_output(
    ctx: ToolContext, step: int, call: int = 1, start_line: int = 1, end_line: int | None = None
) -> ToolResult:
    """Numbered lines of a kept observation, paged like read_file."""
    text = ctx.outputs.get(step, call)
    if text is None:
        kept = ", ".join(f"{s}" if c == 1 else f"{s}.{c}" for s, c in ctx.outputs.steps()[-12:])
        raise ToolError(
            f"no output is kept for step {step}"
            + (f" call {call}" if call != 1 else "")
            + (f"; kept: {kept}" if kept else "")
        )
    lines = text.split("\n")
    total = len(lines)
    if start_line > total:
        raise ToolError(f"that output has only {total} lines; start_line {start_line} is past it")
    last = min(end_line or total, total)
    if last < start_line:
        raise ToolError("end_line must be >= start_line")
    body, last = numbered(lines, start_line, last, ctx.output_limit)
    if last == total and start_line == 1:
        body += f"\n[lines 1-{last} of {total}]"
    data = {"step": step, "call": call, "start_line": start_line, "end_line": last}
    return ToolResult(True, body, data)


TOOLS = (
    Tool(
        "read_output",
        "Read on in an earlier step's output where it was cut or shortened (the note there "
        "names the step and line).",
        ReadOutputArgs,
        read_output,
        progress=lambda args, result: (
            f"step {args.step} lines "
            f"{result.data.get('start_line', '?')}-{result.data.get('end_line', '?')}"
        ),
    ),
)
