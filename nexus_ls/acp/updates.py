"""A run's journal events as ACP session updates, and the other words of the mapping
(stop reasons, permission options and answers). Pure: no I/O, no connection.

- a model turn's calls: one `tool_call` each (`in_progress`), with the model's prose
  before them as an `agent_thought_chunk`;
- each tool call's event: its `tool_call_update` (`completed`, or `failed` when the call
  failed), titled as the journal says it, the observation as text content; a call the
  harness made itself (guided mode: no model turn before it) starts and ends at once;
- a plan (`agent` event whose data has `plan`): a `plan` update, the whole list;
- a step's commit (`edit` event whose data has `diff`): a completed `edit` tool call with
  one `diff` content per file (old and new text, read from the commit by the caller);
- the sandbox in force, at the start, and how the run ended, with its branch, as
  `agent_message_chunk`s.

Tool call ids are `<run id>/<step>.<n>` (the n-th call of the step), so the model turn's
call and the tool's event meet whatever id the model gave; a sub-agent's calls carry its
own run id and a `sub-agent N:` title, and its plan stays out of the session's plan.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from acp.schema import (
    AgentMessageChunk,
    AgentPlanUpdate,
    AgentThoughtChunk,
    ContentToolCallContent,
    FileEditToolCallContent,
    PermissionOption,
    PlanEntry,
    PlanEntryStatus,
    RequestPermissionResponse,
    StopReason,
    TerminalToolCallContent,
    TextContentBlock,
    ToolCallLocation,
    ToolCallProgress,
    ToolCallStart,
    ToolCallStatus,
    ToolKind,
)

from nexus_ls.journal.printable import one_line
from nexus_ls.journal.progress import read_plan
from nexus_ls.journal.shapes import PlanStepData

Update = AgentMessageChunk | AgentThoughtChunk | AgentPlanUpdate | ToolCallStart | ToolCallProgress
# path -> (text before the commit or None: a new file, text after or None: deleted)
Texts = Mapping[str, tuple[str | None, str | None]]

TOOL_CATEGORIES = frozenset({"tool", "edit", "command", "test"})
OUTPUT_LIMIT = 4000  # characters of an observation shown in the client (the journal has all)
KINDS: dict[str, ToolKind] = {
    "read_file": "read",
    "read_output": "read",
    "service_logs": "read",
    "list_files": "search",
    "search": "search",
    "recall": "search",
    "write_file": "edit",
    "edit_file": "edit",
    "run_command": "execute",
    "run_tests": "execute",
    "start_service": "execute",
    "stop_service": "execute",
    "deploy": "execute",
    "update_plan": "think",
    "remember": "think",
}
# The argument that says most about a call, for its title before it runs.
TITLE_ARGUMENTS = ("path", "command", "query", "pattern", "name", "task", "summary")

# Approvals: the supervisor's decisions as ACP permission options, in this order.
OPTIONS = (
    PermissionOption(option_id="once", name="Allow once", kind="allow_once"),
    PermissionOption(option_id="run", name="Allow for this run", kind="allow_always"),
    PermissionOption(option_id="deny", name="Deny", kind="reject_once"),
)
WHO = "the ACP client's user"


def is_commit(event: Mapping[str, Any]) -> bool:
    """A step's commit: an `edit` event whose data has the commit and its diff."""
    data = event.get("data")
    return (
        event.get("category") == "edit"
        and isinstance(data, dict)
        and isinstance(data.get("diff"), str)
        and bool(data.get("commit"))
    )


def tool_kind(name: str) -> ToolKind:
    return KINDS.get(name, "other")


def text(value: str) -> TextContentBlock:
    return TextContentBlock(type="text", text=value)


def message(value: str) -> AgentMessageChunk:
    return AgentMessageChunk(session_update="agent_message_chunk", content=text(value))


def thought(value: str) -> AgentThoughtChunk:
    return AgentThoughtChunk(session_update="agent_thought_chunk", content=text(value))


def plan_update(plan: list[PlanStepData]) -> AgentPlanUpdate:
    """NEXUS's plan steps as ACP plan entries (`done` is ACP's `completed`)."""
    status: dict[str, PlanEntryStatus] = {
        "done": "completed",
        "in_progress": "in_progress",
        "pending": "pending",
    }
    entries = [
        PlanEntry(content=s["text"], priority="medium", status=status[s["status"]]) for s in plan
    ]
    return AgentPlanUpdate(session_update="plan", entries=entries)


def stop_reason(status: str, error: str | None) -> StopReason:
    """How a run ended, as the prompt's stop reason: `end_turn` when it succeeded,
    `cancelled` when it was stopped (by the client, or the host going away), the limit hit
    when a step or token limit ended it, else `refusal` (ACP has no `failed`)."""
    if status == "succeeded":
        return "end_turn"
    if status in ("cancelled", "interrupted"):
        return "cancelled"
    if error and error.startswith("step limit reached"):
        return "max_turn_requests"
    if error and error.startswith("token limit reached"):
        return "max_tokens"
    return "refusal"


def decision(response: RequestPermissionResponse) -> tuple[str, str]:
    """The client's answer as the supervisor's (decision, who decided)."""
    outcome = response.outcome
    if outcome.outcome != "selected":
        return "deny", f"{WHO} cancelled the question"
    chosen = getattr(outcome, "option_id", None)
    if chosen in ("once", "run", "deny"):
        return str(chosen), WHO
    return "deny", f"{WHO} chose an option NEXUS did not offer ({str(chosen)[:40]!r})"


def permission_title(request: Mapping[str, Any]) -> str:
    """What a run asks to do, as the permission request's tool call title."""
    network = " with network" if request.get("network") else ""
    command = one_line(str(request.get("command", "")))
    return f"Run `{command}`{network}? ({one_line(str(request.get('reason', '')))})"


def step_words(message: str) -> str:
    """A step event's message without its `step N: ` prefix."""
    head, sep, rest = message.partition(": ")
    return rest if sep and head.startswith("step ") else message


def call_arguments(arguments: Any) -> Any:
    """A model call's arguments as sent (JSON text), parsed when they parse."""
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments


def call_title(name: str, arguments: Any) -> str:
    if isinstance(arguments, dict):
        for key in TITLE_ARGUMENTS:
            value = arguments.get(key)
            if isinstance(value, str) and value.strip():
                return f"{name} {one_line(value)}"[:160]
    return name


def cut(value: str) -> str:
    if len(value) <= OUTPUT_LIMIT:
        return value
    more = len(value) - OUTPUT_LIMIT
    return f"{value[:OUTPUT_LIMIT]}\n[... {more} more characters in the journal]"


class RunUpdates:
    """The updates of one run (and its sub-agents) in one session, in journal order."""

    def __init__(self, run_id: str, root: Path) -> None:
        self.run_id = run_id
        self.root = root  # the user's workspace: where a run's paths are, once accepted
        self.open: dict[str, str] = {}  # tool call id -> tool name: started, not ended

    def event(self, event: Mapping[str, Any], texts: Texts | None = None) -> list[Update]:
        """The updates one journal event makes (often none); `texts`: for a commit event,
        each file's text before and after it."""
        if event.get("level") == "DEBUG":  # housekeeping (history shortened, metrics)
            return []
        run = str(event.get("run") or self.run_id)
        category, words = event.get("category"), str(event.get("message", ""))
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        assert isinstance(data, dict)
        step = event.get("step")
        sub = run != self.run_id
        prefix = f"sub-agent {run[len(self.run_id) + 1 :]}: " if sub else ""
        if category == "run" and words.startswith("sandbox") and not sub:
            return [message(f"NEXUS {words}\n")]
        if category == "model" and isinstance(data.get("calls"), list) and step is not None:
            return self.model_turn(run, step, data, prefix)
        if is_commit(event):
            return [self.commit(run, step, words, data, texts or {}, prefix)]
        if category in TOOL_CATEGORIES and isinstance(data.get("tool"), str):
            return [self.tool_result(run, step, words, data, prefix)]
        if category == "agent":
            plan = read_plan(data)
            if plan is not None:
                return [] if sub else [plan_update(plan)]
            if isinstance(data.get("summary"), str) and "success" in data:
                return self.finished(run, step, data)
            if event.get("level") == "WARNING":
                return [thought(f"{prefix}{words}\n")]
        return []

    def model_turn(self, run: str, step: Any, data: dict[str, Any], prefix: str) -> list[Update]:
        updates: list[Update] = []
        said = str(data.get("text") or "").strip()
        if said:
            updates.append(thought(f"{prefix}{said}\n"))
        for index, called in enumerate(data["calls"], 1):
            if not isinstance(called, dict):
                continue
            name = str(called.get("name", "?"))
            arguments = call_arguments(called.get("arguments"))
            call_id = f"{run}/{step}.{index}"
            self.open[call_id] = name
            updates.append(
                ToolCallStart(
                    session_update="tool_call",
                    tool_call_id=call_id,
                    title=prefix + call_title(name, arguments),
                    kind=tool_kind(name),
                    status="in_progress",
                    raw_input=arguments,
                    locations=self.locations(arguments),
                )
            )
        return updates

    def tool_result(
        self, run: str, step: Any, words: str, data: dict[str, Any], prefix: str
    ) -> Update:
        call_id = f"{run}/{step}.{data.get('call') or 1}"
        name = str(data["tool"])
        status: ToolCallStatus = "completed" if data.get("ok") else "failed"
        content = [
            ContentToolCallContent(type="content", content=text(cut(str(data.get("result", "")))))
        ]
        title = prefix + step_words(words)
        if self.open.pop(call_id, None) is None:  # the harness's own call: no turn started it
            arguments = data.get("arguments")
            return ToolCallStart(
                session_update="tool_call",
                tool_call_id=call_id,
                title=title,
                kind=tool_kind(name),
                status=status,
                content=list(content),
                raw_input=arguments,
                locations=self.locations(arguments),
            )
        return ToolCallProgress(
            session_update="tool_call_update",
            tool_call_id=call_id,
            title=title,
            status=status,
            content=list(content),
        )

    def commit(
        self,
        run: str,
        step: Any,
        words: str,
        data: dict[str, Any],
        texts: Texts,
        prefix: str,
    ) -> ToolCallStart:
        """A step's commit: its files' diffs (whole texts when known, else the patch)."""
        files = [f for f in data.get("files") or [] if isinstance(f, str)]
        content: list[
            ContentToolCallContent | FileEditToolCallContent | TerminalToolCallContent
        ] = []
        for path in files:
            old, new = texts.get(path, (None, None))
            if path in texts:
                content.append(
                    FileEditToolCallContent(
                        type="diff", path=str(self.root / path), old_text=old, new_text=new or ""
                    )
                )
        if len(content) < len(files):  # some text unknown: the patch says it all
            content.append(ContentToolCallContent(type="content", content=text(cut(data["diff"]))))
        return ToolCallStart(
            session_update="tool_call",
            tool_call_id=f"{run}/{step}.commit",
            title=prefix + step_words(words),
            kind="edit",
            status="completed",
            content=content,
            locations=[ToolCallLocation(path=str(self.root / f)) for f in files],
            raw_output={"commit": data.get("commit"), "files": files},
        )

    def finished(self, run: str, step: Any, data: dict[str, Any]) -> list[Update]:
        """The `finish` call of the step: it ends with the run's answer (the loop journals
        a successful finish as the answer, not as a tool event)."""
        updates: list[Update] = []
        for call_id, name in list(self.open.items()):
            if name == "finish" and call_id.startswith(f"{run}/{step}."):
                del self.open[call_id]
                answer = ContentToolCallContent(type="content", content=text(cut(data["summary"])))
                updates.append(
                    ToolCallProgress(
                        session_update="tool_call_update",
                        tool_call_id=call_id,
                        status="completed",
                        content=[answer],
                    )
                )
        return updates

    def end(self, run_id: str, status: str, outcome: str, branch: str) -> list[Update]:
        """The run is over: calls still open end with it, and the user is told how it
        ended and how to review it."""
        closing: ToolCallStatus = "completed" if status == "succeeded" else "failed"
        updates: list[Update] = [
            ToolCallProgress(session_update="tool_call_update", tool_call_id=i, status=closing)
            for i in self.open
        ]
        self.open.clear()
        updates.append(
            message(
                f"\nrun {status}: {outcome}\n\nbranch `{branch}` — review with "
                f"`nexus diff {run_id}`, then `nexus accept {run_id}` or "
                f"`nexus discard {run_id}`\n"
            )
        )
        return updates

    def locations(self, arguments: Any) -> list[ToolCallLocation] | None:
        path = arguments.get("path") if isinstance(arguments, dict) else None
        if not isinstance(path, str) or not path or "\0" in path:
            return None
        return [ToolCallLocation(path=str(self.root / path))]
