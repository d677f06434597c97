"""`remember` and `recall`: the workspace's memory, kept by the host and shared by every run.

The agent never writes the memory itself; it asks the host (`ask_host`), which checks the
lesson (no secret is stored), journals it and answers. `recall` ranks lessons the way the
run's starting context did (text relevance times weight), each with its id and source run.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from nexus_ls.tools.base import Args, Mode, Tool, ToolContext, ToolResult, ask_host

MODES: frozenset[Mode] = frozenset(("native", "text"))


class RememberArgs(Args):
    text: str = Field(
        description="One fact about this project that would help a later run: a command "
        "that works, a pitfall and its way round, a convention. No secrets."
    )
    tags: list[str] | None = Field(None, description="Optional: words to find it by.")


class RecallArgs(Args):
    query: str = Field(description="What you want to know, in a few words.")


def remember(ctx: ToolContext, text: str, tags: list[str] | None = None) -> ToolResult:
    reply = ask_host(ctx, "remember", {"text": text, "tags": tags or []})
    lesson = reply.get("lesson") or {}
    known = "remembered" if reply.get("new") else "already known; confirmed"
    return ToolResult(True, f"{known} as {lesson.get('id')}: {lesson.get('text')}", reply)


def recall(ctx: ToolContext, query: str) -> ToolResult:
    reply = ask_host(ctx, "recall", {"query": query})
    lessons: list[dict[str, Any]] = reply.get("lessons") or []
    if not lessons:
        return ToolResult(True, f"no lesson in this workspace's memory matches “{query}”", reply)
    count = f"{len(lessons)} lesson{'' if len(lessons) == 1 else 's'}"
    lines = [f"- [{item.get('id')}] {item.get('line')}" for item in lessons]
    return ToolResult(True, "\n".join([f"{count} for “{query}”, best first:", *lines]), reply)


TOOLS = (
    Tool(
        "remember",
        "Keep a lesson in this workspace's memory for later runs (yours and other agents'): "
        "one short fact worth knowing next time.",
        RememberArgs,
        remember,
        modes=MODES,
    ),
    Tool(
        "recall",
        "Search this workspace's memory: lessons earlier runs learned (commands that work, "
        "fixes, conventions, what the user accepted or discarded), best match first.",
        RecallArgs,
        recall,
        modes=MODES,
        progress=lambda args, result: (result.output.splitlines() or [""])[0][:160],
    ),
)
