"""The tools offered to the model, and the one safe way to call them.

Every module of this package that defines `TOOLS` adds its tools: adding a tool is
writing one module. Models make mistakes in tool calls (bad JSON, wrong names, missing
arguments) and tools meet errors (a path outside the worktree, a missing file). All of
these come back as an observation starting with "error: " so the model can correct
itself; none ends the run.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nexus_ls.sandbox.paths import PathEscape
from nexus_ls.tools.base import Args, Mode, Tool, ToolContext, ToolError, ToolResult, failure
from nexus_ls.tools.kept import view
from nexus_ls.validation import Invalid, usage, validate

__all__ = ["Tool", "ToolContext", "ToolResult", "call_tool", "get_tool", "tool_specs"]


def _discover() -> dict[str, Tool]:
    found: dict[str, Tool] = {}
    here = [str(Path(__file__).parent)]
    for info in sorted(pkgutil.iter_modules(here), key=lambda m: m.name):
        module = importlib.import_module(f"nexus_ls.tools.{info.name}")
        for tool in getattr(module, "TOOLS", ()):
            if tool.name in found:
                raise RuntimeError(f"two tools are named {tool.name!r}")
            found[tool.name] = tool
    # The tools that end a run come last, where a model reads "and then".
    return dict(sorted(found.items(), key=lambda item: item[1].ends_run))


TOOLS: dict[str, Tool] = _discover()


def offered(mode: Mode) -> list[Tool]:
    """The tools a model calling in `mode` is offered."""
    return [tool for tool in TOOLS.values() if mode in tool.modes]


def tool_specs(names: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Tool descriptions in the OpenAI `tools=` format, all of them or those named."""
    chosen = list(TOOLS) if names is None else list(names)
    unknown = [n for n in chosen if n not in TOOLS]
    if unknown:
        raise KeyError(f"unknown tools: {', '.join(unknown)}")
    return [TOOLS[n].spec() for n in chosen]


def get_tool(name: str) -> Tool | None:
    """The tool called `name`, if there is one."""
    return TOOLS.get(name)


def parse_arguments(tool: Tool, arguments: dict[str, Any] | str) -> Args:
    """The call's arguments as the tool's model, or a `ToolError` saying how to fix them."""
    if isinstance(arguments, str):
        if not arguments.strip():
            arguments = {}
        else:
            try:
                arguments = json.loads(arguments)
            except ValueError as exc:
                raise ToolError(
                    f"the arguments are not valid JSON ({exc}); {usage(tool.name, tool.args)}"
                ) from exc
    try:
        return validate(tool.args, arguments)
    except Invalid as exc:
        raise ToolError(f"{exc}; {usage(tool.name, tool.args)}") from None


def call_tool(ctx: ToolContext, name: str, arguments: dict[str, Any] | str) -> ToolResult:
    """Run a tool call from the model; every failure becomes an observation, never a raise.
    The observation is kept whole in `ctx.outputs` and cut to `ctx.output_limit` for view."""
    result = _call(ctx, name, arguments)
    whole = result.output or "(no output)"
    ctx.outputs.keep(ctx.step, ctx.call, whole)
    result.output = view(whole, ctx.output_limit, ctx.step, ctx.call)
    return result


def _call(ctx: ToolContext, name: str, arguments: dict[str, Any] | str) -> ToolResult:
    tool = TOOLS.get(name)
    if tool is None:
        return failure(f"there is no tool named {name!r}; the tools are: {', '.join(TOOLS)}")
    try:
        args = parse_arguments(tool, arguments)
    except ToolError as exc:
        return failure(f"{name}: {exc}", category=tool.category)
    # `reason` is for the journal, unless the tool takes it too (`deploy`).
    exclude = set() if tool.takes_reason else {"reason"}
    try:
        return tool.run(ctx, **args.model_dump(exclude=exclude, exclude_none=True))
    except (ToolError, PathEscape) as exc:
        return failure(str(exc), category=tool.category)
    except UnicodeDecodeError as exc:
        return failure(f"the file is not UTF-8 text ({exc.reason})", category=tool.category)
    except OSError as exc:
        return failure(_describe_os_error(exc, ctx), category=tool.category)
    except Exception as exc:  # a bug in a tool must not end the run
        return failure(f"{name} failed unexpectedly: {type(exc).__name__}: {exc}", tool.category)


def _describe_os_error(exc: OSError, ctx: ToolContext) -> str:
    where = ""
    if exc.filename:
        name = str(exc.filename)
        for root in (str(ctx.root), os.path.realpath(ctx.root)):
            name = name.replace(root.rstrip("/") + "/", "")
        where = f" ({name})"
    return f"{exc.strerror or exc}{where}"
