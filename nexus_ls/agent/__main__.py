"""Agent process entry: `python -m nexus_ls.agent`.

Reads one `start` message on stdin, runs the agent in the worktree it names, and
streams events and a final result on its protocol stream (the original stdout).
Anything else that prints goes to stderr, so stray output cannot corrupt the stream.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from nexus_ls.agent import protocol
from nexus_ls.agent.approvals import Approvals
from nexus_ls.agent.guided import GuidedAgent
from nexus_ls.agent.loop import Agent
from nexus_ls.agent.model import ChatModel, ModelError
from nexus_ls.agent.outcome import Outcome
from nexus_ls.agent.requests import HostError, NoReply, Requests
from nexus_ls.agent.starting_context import starting_context
from nexus_ls.agent.step_commits import StepCommits
from nexus_ls.config import Limits, ModelSettings
from nexus_ls.journal import Redactor, now_iso
from nexus_ls.sandbox import cgroups
from nexus_ls.sandbox.commits import DEFAULT_SIZE_LIMIT, CommitGuard, worktree_env
from nexus_ls.sandbox.netns import RunNetwork
from nexus_ls.sandbox.policy import Policy
from nexus_ls.sandbox.processes import become_subreaper, keep_private
from nexus_ls.sandbox.profile import SandboxProfile
from nexus_ls.tools import ToolContext
from nexus_ls.tools.base import Ask, Inbox, ToolError
from nexus_ls.tools.gate import CommandGate
from nexus_ls.tools.registry import offered
from nexus_ls.tools.services import end_services


def run(
    start: dict[str, Any],
    channel: protocol.Channel,
    cancel: threading.Event,
    approvals: Approvals | None = None,
    requests: Requests | None = None,
    inbox: Inbox | None = None,
) -> Outcome:
    # The host sends its secrets by name: this process's environment holds none of them.
    redactor = Redactor(environ=start.get("secrets") or {})

    def emit(
        level: str,
        category: str,
        message: str,
        *,
        step: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        channel.send(
            {
                "type": protocol.EVENT,
                "ts": now_iso(),
                "level": level,
                "category": category,
                "message": message,
                "step": step,
                "data": data or {},
            }
        )

    worktree = Path(start["worktree"])
    git_dir = Path(start["git_dir"]) if start.get("git_dir") else None
    limits = Limits(**start.get("limits", {}))
    settings = ModelSettings(**start["model"])
    model = ChatModel(
        settings,
        [tool.spec() for tool in offered("native")],
        cancel=cancel,
        notify=lambda level, msg, data: emit(level, "model", msg, data=data),
    )
    model.deadline = time.monotonic() + limits.wall_time  # naming the model counts too

    on_change = StepCommits(
        worktree,
        git_dir,
        start["run_id"],
        CommitGuard(
            size_limit=int(start.get("commit_size_limit") or DEFAULT_SIZE_LIMIT),
            secrets=start.get("secrets") or {},
        ),
        redactor,
        emit,
    )

    sandbox = SandboxProfile.from_json(start["sandbox"]) if start.get("sandbox") else None
    if sandbox is not None and sandbox.mode != "off":
        cgroups.join(sandbox.pids_cgroup, sandbox.limits.processes)
    policy = Policy.from_json(start["policy"]) if "policy" in start else Policy()
    ctx = ToolContext(
        root=worktree,
        command_timeout=limits.command_timeout,
        output_limit=limits.output_limit,
        cancel=cancel,
        sandbox=sandbox,
        scrub=redactor.scrub_text,
        git_env=worktree_env(worktree, git_dir),
        base=start.get("base"),
        gate=CommandGate(
            policy,
            approvals.ask if approvals else None,
            network_on=bool(sandbox and (sandbox.network or sandbox.mode == "off")),
        ),
        ask=host_asker(requests) if requests else None,
        inbox=inbox or Inbox(),
        deploy=start.get("deploy"),
    )
    ctx.run_network = RunNetwork.for_profile(sandbox)
    if ctx.run_network is not None and ctx.run_network.entry() is None:
        why = ctx.run_network.error
        emit("WARNING", "agent", "commands of this run do not share a network namespace "
             f"(each has its own; a service cannot be reached): {why}")  # fmt: skip
    try:
        return _run_agent(start, model, ctx, limits, emit, on_change, settings.guided)
    finally:
        end_services(ctx)  # every service ends with its run; the namespace goes with them


def _run_agent(
    start: dict[str, Any],
    model: ChatModel,
    ctx: ToolContext,
    limits: Limits,
    emit: Any,
    on_change: StepCommits,
    guided: bool,
) -> Outcome:
    name = model.resolve_name()
    emit(
        "INFO",
        "agent",
        f"agent started with model {name}",
        data={"model": name, "pid": os.getpid()},
    )
    kind = GuidedAgent if guided else Agent
    agent = kind(model, ctx, limits, emit, on_change, limits.context_window)
    if guided:  # a small model's prompts hold only what each step needs
        return agent.run(start["task"], start.get("context", ""))
    starting = starting_context(
        ctx.root,
        git_env=ctx.git_env,
        token_budget=limits.context_tokens,
        lessons=[m for m in start.get("memory") or [] if isinstance(m, dict)],  # the host's
    )
    emit("INFO", "agent", f"starting context: {len(starting):,} characters",
         data={"starting_context": starting})  # fmt: skip
    return agent.run(start["task"], start.get("context", ""), starting)


def host_asker(requests: Requests) -> Ask:
    """`ctx.ask` for tools: the host's refusal, or the run ending, is a `ToolError`."""

    def ask(kind: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return requests.ask(kind, body)
        except (HostError, NoReply) as exc:
            raise ToolError(str(exc)) from None

    return ask


def main() -> int:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    channel = protocol.Channel(out)
    lines = protocol.read_lines(0)
    from nexus_ls.agent.spare import warm_up

    warm_up(0)  # while the host has not sent the start, load what the model call needs
    start = protocol.decode(next(lines, b""))
    if not start or start.get("type") != protocol.START:
        channel.send(
            {
                "type": protocol.RESULT,
                "status": "failed",
                "summary": "",
                "error": "agent process got no start message",
            }
        )
        return 2
    try:  # started in `/` (before the worktree existed, or as a spare): enter the run's
        os.chdir(start["worktree"])
    except (KeyError, TypeError, OSError) as exc:
        channel.send(
            {
                "type": protocol.RESULT,
                "status": "failed",
                "summary": "",
                "error": f"agent process cannot enter the run's worktree: {exc}",
            }
        )
        return 2
    become_subreaper()  # orphans of the run's commands come back here to be killed
    keep_private()  # it holds the API key
    cancel = threading.Event()
    requests = Requests(channel, cancel)
    approvals = Approvals(requests)
    inbox = Inbox()

    def listen() -> None:
        for line in lines:
            message = protocol.decode(line)
            if message and message.get("type") == protocol.REPLY:
                requests.reply(message)
            elif message and message.get("type") == protocol.NOTE:
                inbox.put(message)
            elif message and message.get("type") == protocol.CANCEL:
                break
        cancel.set()  # a cancel message, or the host is gone

    threading.Thread(target=listen, daemon=True).start()
    error = None
    try:
        outcome = run(start, channel, cancel, approvals, requests, inbox)
    except ModelError as exc:
        error = str(exc)
        outcome = Outcome("failed", error)
    except Exception as exc:  # the host must always get a result it can journal
        error = f"agent crashed: {type(exc).__name__}: {exc}"
        channel.send(
            {
                "type": protocol.EVENT,
                "ts": now_iso(),
                "level": "ERROR",
                "category": "error",
                "message": error,
                "step": None,
                "data": {"traceback": traceback.format_exc()},
            }
        )
        outcome = Outcome("failed", error)
    try:
        channel.send(
            {
                "type": protocol.RESULT,
                "status": outcome.status,
                "summary": outcome.summary,
                "steps": outcome.steps,
                "tokens": outcome.tokens,
                "error": error or outcome.error,
            }
        )
    except BrokenPipeError:  # the host is gone; nobody is left to tell
        return 1
    return 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    # The result is sent and flushed: skip the interpreter's teardown (0.3-0.9 s of it
    # with `openai` loaded), which the host would wait for before the run ends.
    os._exit(code)
