"""What each kind of event's `data` holds: the contract between the agent that writes an
event and every reader (the CLI, the language server, the editor clients).

A tool call's own facts (a diff, an exit code, test counts) sit under `details`, never
among the loop's keys, so no tool can overwrite what the loop records.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

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


PlanStatus = Literal["pending", "in_progress", "done"]


class PlanStepData(TypedDict):
    text: str
    status: PlanStatus


class PlanData(TypedDict):
    """category `agent`, message `step N: plan K/T: <current step>`: the run's whole
    current plan, each time it changes (the model's `update_plan`, or guided mode's moves)."""

    plan: list[PlanStepData]
    current: int | None  # 1-based: the step in progress, else the first pending (None: all done)
    done: int
    total: int
    source: Literal["model", "guided"]


class ToolFigures(TypedDict):
    calls: int
    failed: int
    ms: int  # time spent in the tool's calls, summed


class MetricData(TypedDict):
    """category `metric`: the run's figures so far, after each step (DEBUG) and once at its
    end (INFO, `final` true). Cumulative, so the last one is the run's."""

    steps: int
    tokens: dict[str, int]  # prompt, completion
    seconds: float  # since the run's agent started
    calls: int
    failed_calls: int
    tools: dict[str, ToolFigures]  # by tool name
    model_calls: int
    model_ms: int
    idle_steps: int  # steps in a row with no file changed and nothing new seen (stuck detector)
    final: bool


class TestCheckData(TypedDict):
    """category `test`, message `step N: tests at finish: ...` or `step N: tests at the
    base <commit>: ...`: NEXUS's own test run when a `finish` is checked (repair at
    finish), not a tool call (no `tool`, no `details`)."""

    check: Literal["finish", "base"]
    command: str
    passed: int | None
    failed: int | None
    exit_code: int | None  # None: killed (timed out)
    duration_ms: int
    timed_out: bool
    failing: list[str]  # the failing tests' ids, as the runner names them
    output: str  # its end
    base: NotRequired[str]  # the base commit (`base` checks)


class HeldFinishData(TypedDict):
    """category `test`, level WARNING, message `step N: finish held: ...`: a `finish`
    answered with the notice instead of ending the run."""

    regressions: list[str]  # failing now, passed at the base
    named: list[str]  # named by the task, failing now
    whole: bool  # no ids: the command as a whole passed at the base and fails now
    command: str
    notice: str  # what the model was told
