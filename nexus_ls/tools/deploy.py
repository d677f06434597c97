"""`deploy`: the project's own deploy command, run only once the user has approved it.

The command is the project's setting, `deploy = "..."` in its `.nexus/policy.toml` as
committed (the model can neither write nor change it: the worktree's copy is never
read), sent to the agent in its start message. Every call asks the user (`--yes`, or
"for this run", answers up front), whatever the rules allow; a rule that denies the
command still denies it. It runs in the sandbox with the network, or outside it when the
user's own rule for that command says `sandbox = false`.
"""

from __future__ import annotations

import os
from dataclasses import asdict

from pydantic import Field

from nexus_ls.sandbox.repo import run_git
from nexus_ls.tools.base import Args, Tool, ToolContext, ToolError, ToolResult, failure
from nexus_ls.tools.shell import command_result, run_shell, unconfined_env


def deploy(ctx: ToolContext, reason: str | None = None) -> ToolResult:
    """Ask the user, then run the project's deploy command."""
    command = (ctx.deploy or "").strip()
    if not command:
        raise ToolError(
            'this project has no deploy command: the user can set deploy = "COMMAND" in the '
            "repository's .nexus/policy.toml (committed); do not deploy another way"
        )
    why = " ".join((reason or "").split())[:300]
    if not why:
        raise ToolError("give a reason: the user reads it when asked to approve the deploy")
    if ctx.cancel is not None and ctx.cancel.is_set():
        return failure("cancelled before the deploy started", category="command")
    if ctx.gate is None:
        return failure("not run: nobody can approve a deploy in this run", category="command")
    changed = changed_files(ctx)
    # The command is the user's, but what it runs may be files this run changed: say which.
    seen = "" if changed is None else f"; this run changed {changed or 'no files'}"
    verdict = ctx.gate.approve(command, f"deploy: {why}{seen}")
    if not verdict.run:
        return failure(verdict.refusal, category="command", command=command, **verdict.data)
    seconds = ctx.command_timeout
    sandbox = None if verdict.unconfined else ctx.sandbox  # the user's rule says so
    outcome = run_shell(
        command, ctx.root, seconds, ctx.output_limit - 200, ctx.cancel, sandbox,
        verdict.network, unconfined_env(ctx) if verdict.unconfined else None, ctx.run_network,
    )  # fmt: skip
    head = f"deploy: exit code {outcome.exit_code} ({outcome.duration_ms / 1000:.1f} s) — {command}"
    data = {**asdict(outcome), **verdict.data, "network": verdict.network, "deploy": True}
    del data["full"]
    data["sandboxed"] = sandbox is not None and sandbox.mode != "off"
    return command_result(outcome, seconds, head, data, "command", ctx.sandbox, ctx.scrub)


def changed_files(ctx: ToolContext, most: int = 12) -> str | None:
    """The files the worktree changed since the run's base, in a few words (None: the
    base is not known)."""
    if not ctx.base:
        return None
    env = ctx.git_env or None
    diff = run_git(ctx.root, "diff", "--name-only", "-z", "--no-renames", ctx.base, env=env)
    new = run_git(ctx.root, "ls-files", "-z", "--others", "--exclude-standard", env=env)
    names = [os.fsdecode(n) for out in (diff, new) if out.status == 0
             for n in out.stdout.split(b"\0") if n]  # fmt: skip
    names = list(dict.fromkeys(names))
    shown = ", ".join(names[:most]) + (
        f" and {len(names) - most} more" if len(names) > most else ""
    )
    return shown


class DeployArgs(Args):
    reason: str | None = Field(
        None, description="Why deploy now (needed): the user reads it when asked to approve."
    )


TOOLS = (
    Tool(
        "deploy",
        "Run the project's own deploy command (set by the user), after the user approves "
        "it. Refused when the project has none.",
        DeployArgs,
        deploy,
        category="command",
        changes_files=True,
        subject=lambda args, result: "deploy",
        takes_reason=True,
    ),
)
