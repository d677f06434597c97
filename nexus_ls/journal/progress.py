"""A run's progress in words: its plan and its figures.

The plan's one-line headline (`plan 2/5: fix add()`), the compact line the model sees
after each step, the checklist `nexus show` prints; and one line of the run's metrics.
Every reader (the loop, guided mode, the language server's progress, the timeline) says
them the same way through these, from the `PlanData` and `MetricData` of journal events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args

from nexus_ls.journal.shapes import MetricData, PlanData, PlanStatus, PlanStepData

STATUSES: tuple[PlanStatus, ...] = get_args(PlanStatus)
MARKS: dict[str, str] = {"done": "[x]", "in_progress": "[>]", "pending": "[ ]"}
COMPACT_TEXT = 60  # characters of each step's text in the model's compact line


def current(plan: Sequence[PlanStepData]) -> int | None:
    """The 0-based index of the step in progress, else of the first pending one (None:
    every step is done, or there are none)."""
    for status in ("in_progress", "pending"):
        for index, step in enumerate(plan):
            if step["status"] == status:
                return index
    return None


def headline(plan: Sequence[PlanStepData]) -> str:
    """`plan 2/5: <the current step>`, or `plan 5/5 done`."""
    at = current(plan)
    if at is None:
        return f"plan {len(plan)}/{len(plan)} done" if plan else "no plan"
    return f"plan {at + 1}/{len(plan)}: {_one_line(plan[at]['text'])}"


def compact(plan: Sequence[PlanStepData]) -> str:
    """The plan in one line for the model: `[plan: [x] a | [>] b | [ ] c]`."""
    steps = " | ".join(f"{MARKS[s['status']]} {_one_line(s['text'], COMPACT_TEXT)}" for s in plan)
    return f"[plan: {steps}]"


def checklist(plan: Sequence[PlanStepData]) -> list[str]:
    """One line per step, `[x] text`, whole."""
    return [f"{MARKS.get(str(s['status']), '[?]')} {_one_line(s['text'], 0)}" for s in plan]


def plan_data(plan: Sequence[PlanStepData], source: Literal["model", "guided"]) -> PlanData:
    at = current(plan)
    return PlanData(
        plan=[PlanStepData(text=s["text"], status=s["status"]) for s in plan],
        current=None if at is None else at + 1,
        done=sum(1 for s in plan if s["status"] == "done"),
        total=len(plan),
        source=source,
    )


def read_plan(data: Any) -> list[PlanStepData] | None:
    """The plan in an event's `data`, if it holds a well-formed one (readers trust nothing)."""
    plan = data.get("plan") if isinstance(data, dict) else None
    if not isinstance(plan, list) or not plan:
        return None
    steps: list[PlanStepData] = []
    for step in plan:
        if not isinstance(step, dict) or not isinstance(step.get("text"), str):
            return None
        status = step.get("status")
        if status not in STATUSES:
            return None
        steps.append(PlanStepData(text=step["text"], status=status))
    return steps


def describe(data: MetricData) -> str:
    """`5 steps, 7 tool calls (2 failed), 2,486 tokens, 12 s; time per tool: run_tests 8.1 s
    (2 calls), read_file 0.1 s (3 calls)`, the slowest tool first."""
    failed = f" ({data['failed_calls']} failed)" if data["failed_calls"] else ""
    tokens = sum(data["tokens"].values())
    head = (
        f"{_count(data['steps'], 'step')}, {_count(data['calls'], 'tool call')}{failed}, "
        f"{tokens:,} tokens, {clock(data['seconds'])}"
    )
    ranked = sorted(data["tools"].items(), key=lambda item: -item[1]["ms"])
    per_tool = ", ".join(
        f"{name} {clock(f['ms'] / 1000)} ({_count(f['calls'], 'call')}"
        + (f", {f['failed']} failed)" if f["failed"] else ")")
        for name, f in ranked
    )
    return f"{head}; time per tool: {per_tool}" if per_tool else head


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def clock(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    return f"{whole // 60} min {whole % 60} s" if whole >= 60 else f"{whole} s"


def _one_line(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if not limit or len(flat) <= limit else flat[: limit - 1] + "…"
