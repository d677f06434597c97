"""The tools offered to the model, and the one safe way to call them.

Models make mistakes in tool calls (bad JSON, wrong names, missing arguments) and tools
meet errors (a path outside the worktree, a missing file). All of these come back as an
observation starting with "error: " so the model can correct itself; none ends the run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from nexus_ls.sandbox.paths import PathEscape
from nexus_ls.tools import files, shell, testing
from nexus_ls.tools.base import (
    Tool,
    ToolContext,
    ToolError,
    ToolResult,
    failure,
    object_schema,
)
from nexus_ls.tools.output import cap

__all__ = ["Tool", "ToolContext", "ToolResult", "call_tool", "get_tool", "tool_specs"]


def finish(ctx: ToolContext, summary: str, success: bool = True) -> ToolResult:
    """Ending the run is the agent loop's job; this only echoes what the model reported."""
    return ToolResult(True, summary.strip() or "finished", {"summary": summary, "success": success})


FINISH = Tool(
    "finish",
    "End the task: call this once the work is done (or cannot be done), with a short summary "
    "of what changed and how it was checked.",
    object_schema(
        {
            "summary": {"type": "string", "description": "What was done and how it was checked."},
            "success": {
                "type": "boolean",
                "description": "false if the task could not be completed (default true).",
            },
        },
        ["summary"],
    ),
    finish,
)

TOOLS: dict[str, Tool] = {
    tool.name: tool for tool in (*files.TOOLS, *shell.TOOLS, *testing.TOOLS, FINISH)
}

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def tool_specs(names: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Tool descriptions in the OpenAI `tools=` format, all of them or those named."""
    chosen = list(TOOLS) if names is None else list(names)
    unknown = [n for n in chosen if n not in TOOLS]
    if unknown:
        raise KeyError(f"unknown tools: {', '.join(unknown)}")
    return [
        {
            "type": "function",
            "function": {
                "name": TOOLS[n].name,
                "description": TOOLS[n].description,
                "parameters": TOOLS[n].parameters,
            },
        }
        for n in chosen
    ]


def get_tool(name: str) -> Tool | None:
    """The tool called `name`, if there is one."""
    return TOOLS.get(name)


def call_tool(ctx: ToolContext, name: str, arguments: dict[str, Any] | str) -> ToolResult:
    """Run a tool call from the model; every failure becomes an observation, never a raise."""
    tool = TOOLS.get(name)
    if tool is None:
        return failure(f"there is no tool named {name!r}; the tools are: {', '.join(TOOLS)}")
    try:
        args = _check_arguments(tool, arguments)
    except ToolError as exc:
        return failure(f"{name}: {exc}", category=tool.category)
    try:
        result = tool.run(ctx, **args)
    except (ToolError, PathEscape) as exc:
        return failure(str(exc), category=tool.category)
    except UnicodeDecodeError as exc:
        return failure(f"the file is not UTF-8 text ({exc.reason})", category=tool.category)
    except OSError as exc:
        return failure(_describe_os_error(exc, ctx), category=tool.category)
    except Exception as exc:  # a bug in a tool must not end the run
        return failure(f"{name} failed unexpectedly: {type(exc).__name__}: {exc}", tool.category)
    result.output = cap(result.output or "(no output)", ctx.output_limit)
    return result


def _check_arguments(tool: Tool, arguments: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(arguments, str):
        if not arguments.strip():
            arguments = {}
        else:
            try:
                arguments = json.loads(arguments)
            except ValueError as exc:
                raise ToolError(
                    f"the arguments are not valid JSON ({exc}); {_usage(tool)}"
                ) from exc
    if not isinstance(arguments, dict):
        raise ToolError(f"the arguments must be a JSON object; {_usage(tool)}")
    properties: dict[str, Any] = tool.parameters["properties"]
    # A null counts as leaving an optional argument out; models often send them.
    args = {k: v for k, v in arguments.items() if k != "reason" and v is not None}
    extra = sorted(k for k in args if k not in properties)
    if extra:
        raise ToolError(f"unexpected argument(s) {', '.join(extra)}; {_usage(tool)}")
    missing = [k for k in tool.parameters["required"] if k not in args]
    if missing:
        raise ToolError(f"missing required argument(s) {', '.join(missing)}; {_usage(tool)}")
    for key, value in args.items():
        expected = properties[key]["type"]
        if isinstance(value, float) and expected == "integer" and value.is_integer():
            args[key] = value = int(value)
        if not isinstance(value, _TYPES[expected]) or (
            isinstance(value, bool) and expected != "boolean"
        ):
            raise ToolError(f"argument {key} must be of type {expected}, not {_json_type(value)}")
    return args


def _usage(tool: Tool) -> str:
    properties = tool.parameters["properties"]
    required = set(tool.parameters["required"])
    shown = [
        f"{k}: {p['type']}" + ("" if k in required else " (optional)")
        for k, p in properties.items()
    ]
    return f"{tool.name} takes {{{', '.join(shown)}}}"


def _describe_os_error(exc: OSError, ctx: ToolContext) -> str:
    where = ""
    if exc.filename:
        name = str(exc.filename)
        for root in (str(ctx.root), os.path.realpath(ctx.root)):
            name = name.replace(root.rstrip("/") + "/", "")
        where = f" ({name})"
    return f"{exc.strerror or exc}{where}"


def _json_type(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}
    return "null" if value is None else names.get(type(value), "object")
