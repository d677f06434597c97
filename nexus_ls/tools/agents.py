"""Sub-agents and messages: `spawn_agent`, `wait_agents`, `merge_agent`, `send_message`.

The host starts and tracks the children (`run_tree`); a merge happens here, in the
parent's own process and worktree, so nothing else ever writes to them.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from nexus_ls.errors import NexusError
from nexus_ls.sandbox.commits import format_message
from nexus_ls.sandbox.merge import Conflicts, merge_into_worktree
from nexus_ls.tools.base import Args, Tool, ToolContext, ToolError, ToolResult, ask_host, failure

NATIVE: Any = frozenset(("native", "text"))  # too much for the guided harness's small models


class SpawnArgs(Args):
    task: str = Field(description="What the sub-agent should do, as you would tell a colleague.")
    context: str | None = Field(
        None, description="Optional: what it should know (files, findings, constraints)."
    )


def spawn_agent(ctx: ToolContext, task: str, context: str | None = None) -> ToolResult:
    reply = ask_host(ctx, "spawn_agent", {"task": task, "context": context or ""})
    budget = reply.get("budget") or {}
    if reply.get("status") == "cancelled" or reply.get("error"):
        return failure(f"sub-agent {reply.get('id')} did not start: {reply.get('error')}")
    when = "started" if reply.get("status") == "running" else "queued (it starts when a slot frees)"
    text = (
        f"sub-agent {reply['id']} {when} on branch {reply['branch']}, from your last commit; "
        f"its budget: {budget.get('steps')} steps, {budget.get('tokens', 0):,} tokens, "
        f"{budget.get('seconds')} s, shared with you. It works in parallel; wait_agents "
        "returns its outcome and merge_agent brings its change into your worktree."
    )
    return ToolResult(True, text, {"child": reply["id"], "branch": reply["branch"]})


class WaitArgs(Args):
    ids: list[str] | None = Field(None, description="Sub-agent ids to wait for (default: all).")
    timeout: float | None = Field(
        None, gt=0, description="Optional: seconds to wait at most; the rest are then running."
    )


def wait_agents(
    ctx: ToolContext, ids: list[str] | None = None, timeout: float | None = None
) -> ToolResult:
    reply = ask_host(ctx, "wait_agents", {"ids": ids, "timeout": timeout})
    lines = []
    for agent in reply.get("agents", []):
        files = ", ".join(agent.get("files") or []) or "no files"
        said = agent.get("error") or agent.get("summary") or ""
        lines.append(
            f"- {agent['id']} {agent['status']} ({agent.get('steps', 0)} steps, changed {files})"
            + (f": {said}" if said else "")
        )
    if reply.get("message_arrived"):
        lines.append("A message arrived for you; it follows. Call wait_agents again to go on.")
    return ToolResult(
        True, "\n".join(lines), {"agents": reply.get("agents", []), "charge": reply.get("charge")}
    )


class MergeArgs(Args):
    id: str = Field(description="The sub-agent whose branch to merge into your worktree.")


def merge_agent(ctx: ToolContext, id: str) -> ToolResult:
    child = ask_host(ctx, "agent_branch", {"id": id})
    summary = (str(child.get("summary") or "").strip().splitlines() or ["its work"])[0]
    message = format_message(
        "merge_agent", f"Merge sub-agent {child['id']}: {summary}", "",
        str(child.get("run") or ""), ctx.step,
    )  # fmt: skip
    try:
        merged = merge_into_worktree(ctx.root, ctx.git_env or {}, str(child["head"]), message)
    except Conflicts as exc:
        return failure(
            f"not merged: your worktree and sub-agent {child['id']} both changed these files: "
            f"{', '.join(exc.files)}. Nothing was changed. Read its branch ({child['branch']}) "
            "and make the change yourself, or ask it to redo the work on top of yours.",
            category="edit", conflicts=exc.files, child=child["id"],
        )  # fmt: skip
    except NexusError as exc:
        raise ToolError(f"not merged: {exc}") from None
    if merged.sha is None:
        return ToolResult(True, f"sub-agent {child['id']}'s work is already in your branch.",
                          {"child": child["id"], "files": []}, category="edit")  # fmt: skip
    files = ", ".join(merged.files) or "no files"
    text = f"merged sub-agent {child['id']} as commit {merged.sha[:10]}: {files}"
    return ToolResult(True, text, {"child": child["id"], "commit": merged.sha,
                                   "files": merged.files}, category="edit")  # fmt: skip


class MessageArgs(Args):
    to: str = Field(
        description="Who: `parent`, `children`, `siblings`, or the id of an agent of your tree."
    )
    text: str = Field(description="The message; it reaches them at their next turn.")


def send_message(ctx: ToolContext, to: str, text: str) -> ToolResult:
    reply = ask_host(ctx, "send_message", {"to": to, "text": text})
    delivered = ", ".join(reply.get("delivered", []))
    return ToolResult(True, f"message sent to {delivered}", {"to": to, "delivered": delivered})


TOOLS = (
    Tool(
        "spawn_agent",
        "Start a sub-agent on a part of the task that can be done on its own: it works in "
        "parallel in its own worktree and branch, made from your last commit. Its steps and "
        "tokens count against your budget. Collect it with wait_agents, then merge_agent.",
        SpawnArgs,
        spawn_agent,
        modes=NATIVE,
    ),
    Tool(
        "wait_agents",
        "Wait until your sub-agents end (or a message arrives) and get how each ended, what "
        "it said and which files it changed.",
        WaitArgs,
        wait_agents,
        modes=NATIVE,
    ),
    Tool(
        "merge_agent",
        "Merge a finished sub-agent's branch into your worktree as one commit; a conflict is "
        "reported by file and nothing is changed.",
        MergeArgs,
        merge_agent,
        category="edit",
        modes=NATIVE,
    ),
    Tool(
        "send_message",
        "Send a message to your parent, your children, your siblings or one agent of your "
        "run tree by id; it reaches them at their next turn.",
        MessageArgs,
        send_message,
        modes=NATIVE,
    ),
)
