"""A run's budget: steps, tokens, time and cancel, in one object the loop and guided
mode both hold (rather than inherit), and the one line the model sees of it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from nexus_ls.agent.metrics import Metrics
from nexus_ls.agent.model import Model, ModelError, Turn
from nexus_ls.agent.outcome import Outcome, RunStopped, Status
from nexus_ls.config import Limits

T = TypeVar("T")
SLOW_TOOL = 10  # seconds in one tool before the budget line names it


class Budget:
    """Counts steps (one per model turn, or per harness move) and tokens; ends the run
    with `RunStopped` when a limit is hit, the time is up or the user cancels."""

    def __init__(self, limits: Limits, model: Model, cancel: threading.Event) -> None:
        self.limits, self.model, self.cancel = limits, model, cancel
        self.steps = 0
        self.tokens = {"prompt": 0, "completion": 0}
        self.metrics = Metrics()  # time per tool, failed calls: the run's own figures
        # Steps and tokens this run's sub-agents spent (`charge`): they count against its
        # limits, not in its own step numbers or token counts.
        self.charged = {"steps": 0, "tokens": 0}
        # The model's calls share the run's deadline: no limit waits on the endpoint.
        model.deadline = min(model.deadline, time.monotonic() + limits.wall_time)

    def remaining(self) -> float:
        """Seconds left of the run's wall time."""
        return self.model.deadline - time.monotonic()

    def check(self) -> None:
        if self.cancel.is_set():
            raise RunStopped("cancelled", "cancelled by the user")
        if self.remaining() <= 0:
            raise RunStopped("failed", f"time limit reached ({self.limits.wall_time:g} s)")

    def steps_used(self) -> int:
        return self.steps + self.charged["steps"]

    def tokens_used(self) -> int:
        return sum(self.tokens.values()) + self.charged["tokens"]

    def charge(self, steps: int, tokens: int) -> None:
        """Count what a sub-agent spent against this run's limits."""
        self.charged["steps"] += max(steps, 0)
        self.charged["tokens"] += max(tokens, 0)

    def take_step(self, cleanup: bool = False) -> int:
        """Count one more step, or stop: a step is never taken past the limit, except to
        clean up (putting back what a failed try changed; the limit stops new work only)."""
        if self.steps_used() >= self.limits.max_steps and not cleanup:
            raise RunStopped("failed", f"step limit reached ({self.limits.max_steps} steps)")
        self.steps += 1
        return self.steps

    def steps_left(self) -> int:
        return max(self.limits.max_steps - self.steps_used(), 0)

    def before_model_call(self) -> None:
        """No model call once the run must stop, nor one whose answer could not run."""
        self.check()
        if self.steps_used() >= self.limits.max_steps:
            raise RunStopped("failed", f"step limit reached ({self.limits.max_steps} steps)")

    def call_model(self, call: Callable[[], T]) -> T:
        """A model call; one that ends because the run was cancelled or ran out of time
        ends the run as that, not as the endpoint's failure."""
        self.before_model_call()
        try:
            return call()
        except ModelError:
            self.check()
            raise

    def count(self, turn: Turn) -> None:
        self.tokens["prompt"] += turn.prompt_tokens
        self.tokens["completion"] += turn.completion_tokens
        self.metrics.answer(turn.latency_ms)

    def check_tokens(self) -> None:
        if self.tokens_used() > self.limits.max_tokens:
            raise RunStopped("failed", f"token limit reached ({self.limits.max_tokens} tokens)")

    def line(self) -> str:
        """What is left, in one short line the model sees after each step, and the calls
        that failed so far, if any."""
        left = max(self.limits.max_steps - self.steps_used(), 0)
        tokens = max(self.limits.max_tokens - self.tokens_used(), 0)
        seconds = max(int(self.remaining()), 0)
        clock = f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"
        failed = self.metrics.failed
        calls = f" · {failed} failed call{'s' if failed != 1 else ''}" if failed else ""
        return f"[budget left: {left} steps, {tokens:,} tokens, {clock}{calls}{self.slowest()}]"

    def slowest(self) -> str:
        """The tool the run's time went to, once it is worth knowing (SLOW_TOOL s or more)."""
        if not self.metrics.tools:
            return ""
        name, figures = max(self.metrics.tools.items(), key=lambda item: item[1]["ms"])
        if figures["ms"] < SLOW_TOOL * 1000:
            return ""
        n = figures["calls"]
        return f" · most time: {name} {figures['ms'] // 1000} s in {n} call{'s' if n != 1 else ''}"

    def outcome(self, status: Status, summary: str, error: str | None = None) -> Outcome:
        return Outcome(status, summary, self.steps, self.tokens, error)
