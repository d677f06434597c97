"""The in-process scripted model: the `Model` protocol answered from a per-test script.

For fast tests of the loops, guided plans and tools: no HTTP, no agent process. It takes
the same replies as the HTTP `ScriptedModel` (`call`, `say` ... from scripted_model), or
a function of what the model was shown, and records every prompt it was shown.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from typing import Any

from nexus_ls.agent.model import GREEDY, ModelError, Sampling, ToolCall, Turn

Reply = dict[str, Any]
Step = Reply | Callable[[list[dict[str, Any]]], Reply]


class InProcessModel:
    """Answers `complete` and `complete_json` from `script`, in order."""

    def __init__(self, script: list[Step], window: int | None = None) -> None:
        self.script = list(script)
        self.mode = "native"
        self.deadline = math.inf
        self.window = window
        self.prompts: list[list[dict[str, Any]]] = []  # what each call was shown, as sent
        self.schemas: list[dict[str, Any]] = []  # the schema of each `complete_json` call
        self.samplings: list[Sampling] = []  # and how it was to be sampled

    def resolve_name(self) -> str:
        return "in-process-model"

    def context_window(self) -> int | None:
        return self.window

    def _next(self, shown: list[dict[str, Any]]) -> Reply:
        self.prompts.append(copy.deepcopy(shown))
        if not self.script:
            raise ModelError("the test script has no more replies")
        step = self.script.pop(0)
        return step(shown) if callable(step) else step

    def complete(self, history: list[Any]) -> Turn:
        shown = [
            {"role": e["role"], "content": e["content"],
             **({"calls": [c.name for c in e["calls"]]} if e.get("calls") else {})}
            for e in history
        ]  # fmt: skip
        reply = self._next(shown)
        calls = [
            ToolCall(f"call_{len(self.prompts)}_{i}", name, arguments)
            for i, (name, arguments) in enumerate(reply.get("calls", []))
        ]
        text = reply.get("content") or ""
        size = sum(len(m["content"]) for m in shown) // 4
        return Turn(text, text, calls, prompt_tokens=size, completion_tokens=10)

    def complete_json(
        self,
        messages: list[dict[str, str]],
        schema: dict[str, Any],
        max_tokens: int = 512,
        sampling: Sampling = GREEDY,
    ) -> tuple[Any, Turn]:
        self.schemas.append(copy.deepcopy(schema))
        self.samplings.append(sampling)
        reply = self._next([dict(m) for m in messages])
        raw = reply["content"] if "content" in reply else json.dumps(reply)
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        return value, Turn(raw, raw, prompt_tokens=len(str(messages)) // 4, completion_tokens=10)


def answer(**value: Any) -> Reply:
    """A guided-mode JSON answer."""
    return {"content": json.dumps(value)}
