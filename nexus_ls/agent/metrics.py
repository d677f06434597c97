"""A run's own figures: steps, tokens, time per tool, failed calls.

`Budget` holds one `Metrics` (both loops count through it): `Actions` records every tool
call, the budget every model answer. The model sees the failed calls in its budget line;
the journal gets them all as `metric` events, one after each step and one at the end.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from nexus_ls.journal.progress import describe
from nexus_ls.journal.shapes import MetricData, ToolFigures

if TYPE_CHECKING:
    from nexus_ls.agent.acting import Emit
    from nexus_ls.agent.budget import Budget


class Metrics:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.tools: dict[str, ToolFigures] = {}
        self.model_calls = 0
        self.model_ms = 0
        self.idle_steps = 0  # set by the stuck detector, for the journal

    def call(self, tool: str, ms: int, ok: bool) -> None:
        figures = self.tools.setdefault(tool, ToolFigures(calls=0, failed=0, ms=0))
        figures["calls"] += 1
        figures["failed"] += 0 if ok else 1
        figures["ms"] += ms

    def answer(self, latency_ms: int) -> None:
        self.model_calls += 1
        self.model_ms += latency_ms

    @property
    def calls(self) -> int:
        return sum(f["calls"] for f in self.tools.values())

    @property
    def failed(self) -> int:
        return sum(f["failed"] for f in self.tools.values())

    def seconds(self) -> float:
        return round(time.monotonic() - self.started, 3)

    def data(self, steps: int, tokens: dict[str, int], final: bool = False) -> MetricData:
        return MetricData(
            steps=steps,
            tokens=dict(tokens),
            seconds=self.seconds(),
            calls=self.calls,
            failed_calls=self.failed,
            tools={name: ToolFigures(**f) for name, f in self.tools.items()},
            model_calls=self.model_calls,
            model_ms=self.model_ms,
            idle_steps=self.idle_steps,
            final=final,
        )


def report(emit: Emit, budget: Budget, step: int | None = None, final: bool = False) -> None:
    """Journal the run's figures so far: after a step (DEBUG), or at its end (INFO)."""
    data = budget.metrics.data(budget.steps, budget.tokens, final)
    if final:
        emit("INFO", "metric", f"run metrics: {describe(data)}", step=None, data=dict(data))
    else:
        emit("DEBUG", "metric", f"step {step}: metrics — {describe(data)}", step=step,
             data=dict(data))  # fmt: skip
