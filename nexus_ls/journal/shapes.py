"""What each kind of event's `data` holds: the contract between the agent that writes an
event and every reader (the CLI, the language server, the editor clients).

A tool call's own facts (a diff, an exit code, test counts) sit under `details`, never
among the loop's keys, so no tool can overwrite what the loop records.
"""

from __future__ import annotations

from typing import Any, TypedDict

from typing_extensions import NotRequired


class CallData(TypedDict):
    id: str
    name: str
    arguments: str


class ModelTurnData(TypedDict):
    """category `model`: one answer of the model (one step)."""

    text: str
    calls: list[CallData]
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int
    mode: str


class ToolCallData(TypedDict):
    """categories `tool`, `edit`, `command`, `test`: one tool call and its observation."""

    tool: str
    arguments: Any  # as the model sent them (not always an object)
    ok: bool
    result: str  # the observation as the model saw it
    duration_ms: int
    rationale: str
    call: int  # its place among the step's calls (1-based)
    details: dict[str, Any]  # the tool's own facts


class FinishData(TypedDict):
    """category `agent`, message `step N: finish — ...`: the final answer, whole."""

    summary: str
    success: bool
    rationale: str


class CommitData(TypedDict):
    """category `edit`, message `step N: commit <sha> <subject>`: one step's commit."""

    commit: str
    files: list[str]
    diff: str
    tool: str  # the tools of the step, comma-separated
    rationale: str
    subject: NotRequired[str]


class RunEndData(TypedDict):
    """category `run` (succeeded) or `error`, message `run <status>: ...`: how a run ended.
    Editor clients find a run's end by `exit_code` being set, not by the message."""

    status: str
    summary: str
    error: str | None
    steps: int
    tokens: dict[str, int]
    head: str | None
    exit_code: int
