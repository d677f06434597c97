"""The moves a guided run is made of: tool calls the harness makes itself, and one
grammar-constrained question to the model at a time, with repeats and junk refused.

Harness steps go through `Actions`, as the model loop's calls do, so the journal, the progress
lines and the step commits look exactly like those of a model's own tool calls.
"""

from __future__ import annotations

import json
from typing import Any

from nexus_ls.agent import metrics
from nexus_ls.agent.acting import Actions
from nexus_ls.agent.budget import Budget
from nexus_ls.agent.guided import prompts as ask
from nexus_ls.agent.model import Model, ToolCall, Turn
from nexus_ls.agent.outcome import RunStopped
from nexus_ls.tools import ToolResult

TRIES = 3  # answers per step, and attempts at a working file or passing tests


class Harness:
    """Acts through `tool` and asks through `answer`; the plans are written with these.
    It holds the run's budget and actions rather than being an agent loop itself."""

    def __init__(self, model: Model, budget: Budget, actions: Actions) -> None:
        self.model, self.budget, self.actions = model, budget, actions
        self.ctx, self.emit = actions.ctx, actions.emit
        self.answers: dict[str, tuple[str, int]] = {}  # per step: last answer, times in a row

    def tool(self, name: str, args: dict[str, Any], why: str) -> ToolResult:
        """One tool call made by the harness, journaled and committed like a model's call."""
        step = self.budget.take_step()
        call = ToolCall(f"guided_{step}", name, json.dumps(args))
        turn = Turn(text=why, raw="")
        result = self.actions.execute(step, call, turn)
        note = self.actions.commit(step, turn, [(call, result)], named_by_words=False)
        if note:
            result.output = f"{result.output}\n{note}"
        metrics.report(self.emit, self.budget, step)
        return result

    def answer(
        self, key: str, prompt: str, schema: dict[str, Any], max_tokens: int = 1024
    ) -> dict[str, Any]:
        """The model's answer for one step; an unusable or repeated answer is asked again once
        with a note, the same answer a third time in a row stops the run."""
        note = ""
        for _ in range(TRIES):
            value = self.ask_json(key, ask.messages(prompt, note), schema, max_tokens)
            if not isinstance(value, dict) or not ask.fits(value, schema):
                note, why = ask.NOT_JSON, "it is not the JSON asked for"
            elif self.repeated(key, value):
                note, why = ask.SAME_ANSWER, "it is the same as the last one"
            else:
                return value
            step = self.budget.take_step()
            self.emit(
                "WARNING",
                "agent",
                f"step {step}: the model's answer is not used: {why}; asking again",
                step=step,
                data={"answer": value, "note": note},
            )
            metrics.report(self.emit, self.budget, step)
        raise RunStopped(
            "failed", f"stopped: no usable {key} answer from the model in {TRIES} tries"
        )

    def repeated(self, key: str, value: dict[str, Any]) -> bool:
        canon = json.dumps(value, sort_keys=True)
        last, count = self.answers.get(key, ("", 0))
        count = count + 1 if canon == last else 1
        self.answers[key] = (canon, count)
        if count >= 3:
            raise RunStopped(
                "failed", f"stopped: the model gave the same {key} answer 3 times in a row"
            )
        return count == 2

    def ask_json(
        self, purpose: str, messages: list[dict[str, str]], schema: dict[str, Any], max_tokens: int
    ) -> Any:
        """One constrained model call, journaled like the loop journals a turn."""
        value, turn = self.budget.call_model(
            lambda: self.model.complete_json(messages, schema, max_tokens)
        )
        self.budget.count(turn)
        self.emit(
            "INFO",
            "model",
            f"model answered ({purpose}{'' if value is not None else ', not JSON'}) "
            f"in {turn.latency_ms} ms",
            step=self.budget.steps + 1,
            data={
                "purpose": purpose,
                "text": turn.raw,
                "answer": value,
                "prompt_tokens": turn.prompt_tokens,
                "completion_tokens": turn.completion_tokens,
                "latency_ms": turn.latency_ms,
                "mode": "guided",
            },
        )
        self.budget.check_tokens()
        return value


def passing(tests: ToolResult) -> bool:
    return tests.ok and tests.data.get("exit_code") == 0 and not tests.data.get("failed")


def tests_line(tests: ToolResult) -> str:
    """`tests: P passed, F failed` from the runner's own counts."""
    if tests.data.get("passed") is None:
        return first_line(tests)
    return f"tests: {tests.data['passed']} passed, {tests.data['failed']} failed"


def first_line(result: ToolResult) -> str:
    return (result.output.splitlines() or [""])[0].strip()
