"""The agent's tools: what a model may do inside its run's worktree."""

from nexus_ls.tools.base import Tool, ToolContext, ToolError, ToolResult
from nexus_ls.tools.registry import call_tool, get_tool, tool_specs

__all__ = [
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolResult",
    "call_tool",
    "get_tool",
    "tool_specs",
]
