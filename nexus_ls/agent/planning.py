"""A run's current plan, as the loop and guided mode keep it: journaled each time it
changes (an `agent` event whose `data.plan` is the whole plan), and shown to the model in
one compact line after every step, so it survives shortened and folded history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from nexus_ls.agent.acting import Emit
from nexus_ls.journal.progress import compact, headline, plan_data
from nexus_ls.journal.shapes import PlanStepData


class Planning:
    def __init__(self, emit: Emit, source: Literal["model", "guided"]) -> None:
        self.emit, self.source = emit, source
        self.plan: list[PlanStepData] = []

    def update(self, plan: Sequence[PlanStepData], step: int | None) -> None:
        plan = [PlanStepData(text=s["text"], status=s["status"]) for s in plan]
        if plan == self.plan:
            return
        self.plan = plan
        where = f"step {step}: " if step else ""
        data = plan_data(plan, self.source)
        self.emit("INFO", "agent", f"{where}{headline(plan)}", step=step, data=dict(data))

    def line(self) -> str:
        """The compact plan for the model, or "" while there is none."""
        return compact(self.plan) if self.plan else ""


class Moves:
    """Guided mode's fixed plan: its moves, marked as the harness makes them."""

    def __init__(self, planning: Planning, texts: Sequence[str]) -> None:
        self.planning, self.texts = planning, list(texts)

    def at(self, index: int, step: int) -> None:
        """Move `index` (0-based) is being made: the ones before it are done."""
        plan = [
            PlanStepData(text=text, status="done" if n < index else "in_progress" if n == index
                         else "pending")
            for n, text in enumerate(self.texts)
        ]  # fmt: skip
        self.planning.update(plan, step)

    def done(self, step: int) -> None:
        self.at(len(self.texts), step)
