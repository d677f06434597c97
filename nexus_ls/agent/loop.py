"""The agent loop: ask the model, run the tools it picks, feed back the results.

Kept small on purpose: behaviour lives in the tools (each carries its own facts: whether
it changes files, ends the run, how its commit and progress read), in `Actions` (acting
and committing), in `Budget` (the limits) and in the model adapter. A step is one model
turn, however many tools it calls; the model sees what is left of its budget after
each. Limits, cancellation and being stuck end the loop as `RunStopped`.
"""

from __future__ import annotations

import json
import threading

from nexus_ls.agent import history as hist
from nexus_ls.agent import prompts
from nexus_ls.agent.acting import Actions, Called, Emit, OnChange
from nexus_ls.agent.budget import Budget
from nexus_ls.agent.history import Entry
from nexus_ls.agent.model import Model, ToolCall, Turn, tool_arguments
from nexus_ls.agent.outcome import Outcome, RunStopped
from nexus_ls.config import Limits
from nexus_ls.journal.shapes import CallData, FinishData, ModelTurnData
from nexus_ls.tools import ToolContext, ToolResult, get_tool
from nexus_ls.tools.base import failure

MAX_CALLS = 32  # tool calls run from one answer; a step must not be a whole run
DEFAULT_WINDOW = 32_768  # tokens, when neither the endpoint nor the settings say
FOLD_AT = 0.75  # of the window: earlier turns are folded into a note past this


class Agent:
    keep_turns = hist.KEEP_TURNS  # turns whose observations stay whole

    def __init__(
        self,
        model: Model,
        ctx: ToolContext,
        limits: Limits,
        emit: Emit,
        on_change: OnChange | None = None,
        context_window: int | None = None,
    ) -> None:
        self.model, self.emit = model, emit
        self.budget = Budget(limits, model, ctx.cancel or threading.Event())
        self.actions = Actions(ctx, self.budget, emit, on_change)
        self.failing: tuple[str, int] = ("", 0)
        self.window = context_window  # None: asked of the endpoint once it could matter
        self.last_prompt = 0

    def run(self, task: str, context: str = "", starting: str = "") -> Outcome:
        task_text = prompts.task_message(task, context, starting)
        history: list[Entry] = [
            {"role": "system", "content": prompts.SYSTEM},
            {"role": "user", "content": f"{task_text}\n\n{self.budget.line()}"},
        ]
        try:
            while True:
                turn = self.ask(history)
                if not turn.calls:
                    text = f"{prompts.NO_TOOL_CALL}\n{self.budget.line()}"
                    history.append({"role": "user", "content": text, "step": self.budget.steps})
                    continue
                done = self.act(turn, history)
                if done:
                    return done
                self.keep_bounded(history)
        except RunStopped as stop:
            return self.budget.outcome(stop.status, str(stop), error=str(stop))

    def ask(self, history: list[Entry]) -> Turn:
        """One model turn: one step, whatever number of tool calls it holds."""
        self.deliver(history)
        turn = self.budget.call_model(lambda: self.model.complete(history))
        step = self.budget.take_step()
        self.budget.count(turn)
        self.last_prompt = turn.prompt_tokens or hist.tokens(history)
        history.append(
            {"role": "assistant", "content": turn.raw, "calls": turn.calls, "step": step}
        )
        data = ModelTurnData(
            text=turn.text,
            calls=[CallData(id=c.id, name=c.name, arguments=c.arguments) for c in turn.calls],
            prompt_tokens=turn.prompt_tokens,
            completion_tokens=turn.completion_tokens,
            latency_ms=turn.latency_ms,
            mode=self.model.mode,
        )
        calls = ", ".join(c.name for c in turn.calls) or "no tool call"
        self.emit("INFO", "model", f"model answered ({calls}) in {turn.latency_ms} ms",
                  step=step, data=dict(data))  # fmt: skip
        self.budget.check_tokens()
        return turn

    def deliver(self, history: list[Entry]) -> None:
        """What the host said since the last turn (another agent's message, say) reaches
        the model now, as one user message."""
        notes = self.actions.ctx.inbox.take()
        if not notes:
            return
        history.append({"role": "user", "content": prompts.notes_message(notes),
                        "step": self.budget.steps})  # fmt: skip
        kinds = ", ".join(sorted({str(n.get("kind", "note")) for n in notes}))
        self.emit("INFO", "message", f"{len(notes)} note(s) reached the model ({kinds})",
                  step=self.budget.steps, data={"notes": notes})  # fmt: skip

    def act(self, turn: Turn, history: list[Entry]) -> Outcome | None:
        """Run the turn's calls in order, commit what they changed as the step, and end
        the run if one of them was a successful `finish`."""
        step, ended = self.budget.steps, None
        called: list[Called] = []
        entries: list[Entry] = []
        try:
            for index, call in enumerate(turn.calls, 1):
                if index > MAX_CALLS:  # each call still gets its answer, as endpoints require
                    result = failure(f"not run: at most {MAX_CALLS} tool calls run per step; "
                                     "make this call again in your next answer")  # fmt: skip
                else:
                    result = self.actions.execute(step, call, turn, index)
                    called.append((call, result))
                short = self.actions.outline(call, result)
                entry: Entry = {"role": "tool", "call": call, "content": result.output,
                                "step": step, "index": index, "short": short}  # fmt: skip
                entries.append(entry)
                history.append(entry)
                tool = get_tool(call.name)
                if tool is not None and tool.ends_run and result.ok:
                    ended = self.finished(step, result, turn)
                    break
                if index <= MAX_CALLS:  # a call not run is not the model repeating itself
                    self.watch_repeats(call, result, history)
        finally:  # a run that stops mid-turn still commits what the turn changed so far
            note = self.actions.commit(step, turn, called)
        if note:
            entries[-1]["content"] += f"\n{note}"
        if ended:
            return ended
        entries[-1]["content"] += f"\n{self.budget.line()}"
        return None

    def finished(self, step: int, result: ToolResult, turn: Turn) -> Outcome:
        ok = result.data.get("success", True) is not False
        summary = str(result.data.get("summary") or turn.text or "finished").strip()
        data = FinishData(summary=summary, success=ok, rationale=turn.text)
        self.emit("INFO", "agent", f"step {step}: finish — {summary.splitlines()[0][:200]}",
                  step=step, data=dict(data))  # fmt: skip
        error = None if ok else f"the agent gave up: {summary}"
        return self.budget.outcome("succeeded" if ok else "failed", summary, error)

    def keep_bounded(self, history: list[Entry]) -> None:
        """Shorten old observations every turn; fold old turns near the context window."""
        step = self.budget.steps
        shortened = hist.shorten(history, step, self.keep_turns)
        if shortened:
            self.emit("DEBUG", "agent", f"shortened {shortened} older messages", step=step,
                      data={"shortened": shortened})  # fmt: skip
        if self.window is None and self.last_prompt > FOLD_AT * 8192:
            self.window = self.model.context_window() or DEFAULT_WINDOW
        if not self.window or self.last_prompt <= FOLD_AT * self.window:
            return
        before = hist.tokens(history)
        folded = hist.fold(history, step, self.keep_turns)
        if folded:
            self.emit(
                "INFO",
                "agent",
                f"summarised {folded} earlier messages into a note: the prompt neared the "
                f"model's context ({self.last_prompt:,} of {self.window:,} tokens)",
                step=step,
                data={"folded": folded, "before": before, "after": hist.tokens(history),
                      "window": self.window},
            )  # fmt: skip

    def watch_repeats(self, call: ToolCall, result: ToolResult, history: list[Entry]) -> None:
        """Warn at three identical failing calls in a row; stop at five."""
        key = call.name + json.dumps(tool_arguments(call), sort_keys=True)
        if result.ok:
            self.failing = ("", 0)
            return
        count = self.failing[1] + 1 if self.failing[0] == key else 1
        self.failing = (key, count)
        if count >= 5:
            raise RunStopped(
                "failed", f"stopped: the same failing {call.name} call 5 times in a row"
            )
        if count == 3:
            warning = prompts.REPEAT_WARNING.format(count=count)
            history[-1]["content"] += f"\n{warning}"
            self.emit("WARNING", "agent", warning, step=self.budget.steps,
                      data={"tool": call.name})  # fmt: skip
