"""The moves a guided run is made of: tool calls the harness makes itself, and one
grammar-constrained question to the model at a time, with repeats and junk refused.

Harness steps go through `Actions`, as the model loop's calls do, so the journal, the progress
lines and the step commits look exactly like those of a model's own tool calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from nexus_ls.agent import metrics
from nexus_ls.agent.acting import Actions
from nexus_ls.agent.budget import Budget
from nexus_ls.agent.guided import prompts as ask
from nexus_ls.agent.model import GREEDY, Model, Sampling, ToolCall, Turn
from nexus_ls.agent.outcome import RunStopped
from nexus_ls.tools import ToolResult

TRIES = 3  # answers per step before a step with no usable answer stops the run
SAMPLE_TEMPERATURE = 0.8  # a candidate after the greedy one: varied, still on topic
SAMPLE_CALLS = 16  # model calls one search may make for candidates


class Harness:
    """Acts through `tool` and asks through `answer`; the plans are written with these.
    It holds the run's budget and actions rather than being an agent loop itself."""

    def __init__(self, model: Model, budget: Budget, actions: Actions) -> None:
        self.model, self.budget, self.actions = model, budget, actions
        self.ctx, self.emit = actions.ctx, actions.emit
        self.answers: dict[str, tuple[str, int]] = {}  # per step: last answer, times in a row

    def tool(self, name: str, args: dict[str, Any], why: str, cleanup: bool = False) -> ToolResult:
        """One tool call made by the harness, journaled and committed like a model's call
        (`cleanup`: one that puts back a failed try, made even when the run must stop)."""
        step = self.budget.take_step(cleanup)
        call = ToolCall(f"guided_{step}", name, json.dumps(args))
        turn = Turn(text=why, raw="")
        result = self.actions.execute(step, call, turn, cleanup=cleanup)
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

    def samples(
        self, key: str, prompt: Callable[[], str], schema: dict[str, Any], max_tokens: int = 1024
    ) -> Iterator[tuple[dict[str, Any], Sampling]]:
        """The model's answers as candidates: greedy first, then each with a temperature and
        seed of its own (greedy decoding gives the same answer every time). `prompt` is asked
        anew for each, so it can say what was tried. An answer that does not fit is skipped;
        after SAMPLE_CALLS calls in all the model has nothing more to offer."""
        for n in range(SAMPLE_CALLS):
            sampling = GREEDY if n == 0 else Sampling(SAMPLE_TEMPERATURE, seed=n)
            value = self.ask_json(key, ask.messages(prompt(), ""), schema, max_tokens, sampling)
            if isinstance(value, dict) and ask.fits(value, schema):
                yield value, sampling
            else:
                self.emit("WARNING", "agent",
                          f"the model's {key} answer ({sampling.describe()}) is not the JSON "
                          "asked for; not a candidate", data={"answer": value})  # fmt: skip

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
        self,
        purpose: str,
        messages: list[dict[str, str]],
        schema: dict[str, Any],
        max_tokens: int,
        sampling: Sampling = GREEDY,
    ) -> Any:
        """One constrained model call, journaled like the loop journals a turn."""
        value, turn = self.budget.call_model(
            lambda: self.model.complete_json(messages, schema, max_tokens, sampling)
        )
        self.budget.count(turn)
        self.emit(
            "INFO",
            "model",
            f"model answered ({purpose}{'' if sampling == GREEDY else ', ' + sampling.describe()}"
            f"{'' if value is not None else ', not JSON'}) in {turn.latency_ms} ms",
            step=self.budget.steps + 1,
            data={
                "purpose": purpose,
                "text": turn.raw,
                "answer": value,
                "prompt_tokens": turn.prompt_tokens,
                "completion_tokens": turn.completion_tokens,
                "latency_ms": turn.latency_ms,
                "mode": "guided",
                "sampling": {"temperature": sampling.temperature, "seed": sampling.seed},
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
