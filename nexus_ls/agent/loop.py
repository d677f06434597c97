"""The agent loop: ask the model, run the tools it picks, feed back the results.

Kept small on purpose: behaviour lives in the tools, the model adapter and the
host. Limits, cancellation and being stuck end the loop as exceptions.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from nexus_ls.agent import prompts
from nexus_ls.agent.model import ChatModel, ModelError, ToolCall, Turn, tool_arguments
from nexus_ls.config import Limits
from nexus_ls.tools import ToolContext, ToolResult, call_tool

Emit = Callable[..., None]  # emit(level, category, message, *, step=None, data=None)
# tool, summary, rationale, step -> a note for the model (e.g. what was not committed)
OnChange = Callable[[str, str, str, int], "str | None"]
T = TypeVar("T")
FILE_TOOLS = frozenset({"write_file", "edit_file", "run_command", "run_tests"})


class RunStopped(Exception):
    """Ends a run early; `status` is how it ends."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class Outcome:
    status: str
    summary: str
    steps: int = 0
    tokens: dict[str, int] = field(default_factory=lambda: {"prompt": 0, "completion": 0})
    error: str | None = None  # why a run that did not succeed ended


class Agent:
    def __init__(
        self,
        model: ChatModel,
        ctx: ToolContext,
        limits: Limits,
        emit: Emit,
        on_change: OnChange | None = None,
    ) -> None:
        self.model, self.ctx, self.limits, self.emit = model, ctx, limits, emit
        self.on_change = on_change
        self.cancel = ctx.cancel or threading.Event()
        self.steps = 0
        self.tokens = {"prompt": 0, "completion": 0}
        self.started = time.monotonic()
        model.deadline = min(model.deadline, self.started + limits.wall_time)
        self.failing: tuple[str, int] = ("", 0)

    def run(self, task: str, context: str = "") -> Outcome:
        history: list[dict[str, Any]] = [
            {"role": "system", "content": prompts.SYSTEM},
            {"role": "user", "content": prompts.task_message(task, context)},
        ]
        try:
            while True:
                turn = self.ask(history)
                if not turn.calls:
                    self.next_step()
                    history.append({"role": "user", "content": prompts.NO_TOOL_CALL})
                    continue
                for call in turn.calls:
                    done = self.act(call, turn, history)
                    if done:
                        return done
        except RunStopped as stop:
            return Outcome(stop.status, str(stop), self.steps, self.tokens, error=str(stop))

    def before_model_call(self) -> None:
        """No model call once the run must stop, nor one whose answer could not run."""
        self.check_limits()
        if self.steps >= self.limits.max_steps:
            raise RunStopped("failed", f"step limit reached ({self.limits.max_steps} steps)")

    def call_model(self, call: Callable[[], T]) -> T:
        """A model call; one that ends because the run was cancelled or ran out of time
        ends the run as that, not as the endpoint's failure."""
        try:
            return call()
        except ModelError:
            self.check_limits()
            raise

    def ask(self, history: list[dict[str, Any]]) -> Turn:
        self.before_model_call()
        turn = self.call_model(lambda: self.model.complete(history))
        self.tokens["prompt"] += turn.prompt_tokens
        self.tokens["completion"] += turn.completion_tokens
        history.append({"role": "assistant", "content": turn.raw, "calls": turn.calls})
        calls = ", ".join(c.name for c in turn.calls) or "no tool call"
        self.emit(
            "INFO",
            "model",
            f"model answered ({calls}) in {turn.latency_ms} ms",
            step=self.steps + 1,
            data={
                "text": turn.text,
                "calls": [
                    {"id": c.id, "name": c.name, "arguments": c.arguments} for c in turn.calls
                ],
                "prompt_tokens": turn.prompt_tokens,
                "completion_tokens": turn.completion_tokens,
                "latency_ms": turn.latency_ms,
                "mode": self.model.mode,
            },
        )
        if self.tokens["prompt"] + self.tokens["completion"] > self.limits.max_tokens:
            raise RunStopped("failed", f"token limit reached ({self.limits.max_tokens} tokens)")
        return turn

    def act(self, call: ToolCall, turn: Turn, history: list[dict[str, Any]]) -> Outcome | None:
        step = self.next_step()
        if call.name == "finish":
            args = tool_arguments(call) if call.arguments.strip() else {}
            if not isinstance(args, dict):  # unreadable: not a success, the model may retry
                result = call_tool(self.ctx, "finish", call.arguments)
                self.record(step, call, turn, result, 0)
                history.append({"role": "tool", "call": call, "content": result.output})
                self.watch_repeats(call, result, history)
                return None
            ok = args.get("success", True) is not False
            summary = str(args.get("summary") or turn.text or "finished")
            self.emit(
                "INFO",
                "agent",
                f"step {step}: finish — {summary}",
                step=step,
                data={"summary": summary, "success": ok, "rationale": turn.text},
            )
            error = None if ok else f"the agent gave up: {summary}"
            return Outcome("succeeded" if ok else "failed", summary, self.steps, self.tokens, error)
        result = self.execute(step, call, turn)
        history.append({"role": "tool", "call": call, "content": result.output})
        self.watch_repeats(call, result, history)
        return None

    def execute(self, step: int, call: ToolCall, turn: Turn) -> ToolResult:
        """One tool call, bounded by the run's time, journaled, and committed if it changed
        files; the model's loop and guided mode's harness both act through here."""
        self.check_limits()
        self.ctx.command_timeout = min(self.limits.command_timeout, self.remaining())
        self.ctx.time_left = self.remaining()
        started = time.monotonic()
        result = call_tool(self.ctx, call.name, call.arguments)
        self.record(step, call, turn, result, int((time.monotonic() - started) * 1000))
        if call.name in FILE_TOOLS and self.on_change:
            note = self.on_change(call.name, describe(call), rationale(call, turn), step)
            if note:
                result.output = f"{result.output}\n{note}"
        return result

    def record(self, step: int, call: ToolCall, turn: Turn, result: ToolResult, ms: int) -> None:
        self.emit(
            "INFO" if result.ok else "WARNING",
            result.category,
            f"step {step}: {call.name} — {outline(call, result)}",
            step=step,
            data={
                "tool": call.name,
                "arguments": tool_arguments(call),
                "ok": result.ok,
                "result": result.output,
                "duration_ms": ms,
                "rationale": turn.text,
                **result.data,
            },
        )

    def watch_repeats(
        self, call: ToolCall, result: ToolResult, history: list[dict[str, Any]]
    ) -> None:
        """Warn at three identical failing calls in a row; stop at five."""
        key = call.name + json.dumps(tool_arguments(call), sort_keys=True)
        if result.ok:
            self.failing = ("", 0)
            return
        count = self.failing[1] + 1 if self.failing[0] == key else 1
        self.failing = (key, count)
        if count >= 5:
            raise RunStopped(
                "failed", f"stopped: the same failing {call.name} call 5 times in a row"
            )
        if count == 3:
            warning = prompts.REPEAT_WARNING.format(count=count)
            history.append({"role": "user", "content": warning})
            self.emit("WARNING", "agent", warning, step=self.steps, data={"tool": call.name})

    def next_step(self) -> int:
        if self.steps >= self.limits.max_steps:
            raise RunStopped("failed", f"step limit reached ({self.limits.max_steps} steps)")
        self.steps += 1
        return self.steps

    def remaining(self) -> float:
        """Seconds left of the run's wall time (the model's calls share the deadline)."""
        return self.model.deadline - time.monotonic()

    def check_limits(self) -> None:
        if self.cancel.is_set():
            raise RunStopped("cancelled", "cancelled by the user")
        if self.remaining() <= 0:
            raise RunStopped("failed", f"time limit reached ({self.limits.wall_time:g} s)")


def outline(call: ToolCall, result: ToolResult) -> str:
    """One line on a step's outcome, for progress: reads show their size, not their text."""
    lines = result.output.splitlines() or [""]
    if result.ok and call.name in ("read_file", "list_files", "search"):
        args = tool_arguments(call)
        target = args.get("path") or args.get("pattern") or "" if isinstance(args, dict) else ""
        return f"{target} ({len(lines)} lines)".strip()
    return lines[0].strip()[:160]


def rationale(call: ToolCall, turn: Turn) -> str:
    """The model's words for a step, plus the tool call's own `reason` when it gave one."""
    args = tool_arguments(call)
    reason = args.get("reason") if isinstance(args, dict) else None
    return "\n\n".join(part for part in (turn.text, f"Reason: {reason}" if reason else "") if part)


def describe(call: ToolCall) -> str:
    """One line for a step's commit subject."""
    args = tool_arguments(call)
    args = args if isinstance(args, dict) else {}
    if call.name in ("write_file", "edit_file"):
        return f"{'write' if call.name == 'write_file' else 'edit'} {args.get('path', '?')}"
    if call.name == "run_command":
        return f"run `{str(args.get('command', ''))[:60]}`"
    return f"run tests{' with `' + str(args['command'])[:50] + '`' if args.get('command') else ''}"
