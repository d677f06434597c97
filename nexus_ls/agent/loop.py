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
from nexus_ls.agent import metrics, prompts
from nexus_ls.agent.acting import Actions, Called, Emit, OnChange
from nexus_ls.agent.budget import Budget
from nexus_ls.agent.finish_check import AFTER_HELD_FINISH, FinishCheck
from nexus_ls.agent.history import Entry
from nexus_ls.agent.model import Model, ToolCall, Turn, tool_arguments
from nexus_ls.agent.outcome import Outcome, RunStopped
from nexus_ls.agent.planning import Planning
from nexus_ls.agent.stuck import Stuck
from nexus_ls.config import Limits
from nexus_ls.journal.shapes import CallData, FinishData, ModelTurnData
from nexus_ls.sandbox.repo import run_git
from nexus_ls.tools import ToolContext, ToolResult, get_tool
from nexus_ls.tools import plan as plan_tool
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
        self.repair = FinishCheck(ctx, self.budget, emit)  # tests broken at finish
        self.planning = Planning(emit, "model")  # the model's `update_plan`, shown every step
        self.stuck = Stuck()
        self.head: str | None = None  # the branch tip after the last command step (None: unknown)

    def run(self, task: str, context: str = "", starting: str = "") -> Outcome:
        task_text = prompts.task_message(task, context, starting)
        self.repair.task = task  # a test it names must pass at finish
        history: list[Entry] = [
            {"role": "system", "content": prompts.SYSTEM},
            {"role": "user", "content": f"{task_text}\n\n{self.budget.line()}"},
        ]
        try:
            while True:
                turn = self.ask(history)
                if not turn.calls:
                    text = f"{prompts.NO_TOOL_CALL}\n{self.status()}"
                    entry: Entry = {"role": "user", "content": text, "step": self.budget.steps}
                    history.append(entry)
                    self.end_step(self.budget.steps, entry, changed=False)
                    continue
                done = self.act(turn, history)
                if done:
                    return done
                self.keep_bounded(history)
        except RunStopped as stop:
            return self.budget.outcome(stop.status, str(stop), error=str(stop))
        finally:
            metrics.report(self.emit, self.budget, final=True)

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
        step, ended, held = self.budget.steps, None, False
        called: list[Called] = []
        entries: list[Entry] = []
        try:
            for index, call in enumerate(turn.calls, 1):
                if index > MAX_CALLS:  # each call still gets its answer, as endpoints require
                    result = failure(f"not run: at most {MAX_CALLS} tool calls run per step; "
                                     "make this call again in your next answer")  # fmt: skip
                elif held:  # the model reads the notice before anything else runs
                    result = failure(AFTER_HELD_FINISH)
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
                    notice = self.repair.at_finish(step, result, history)
                    if notice is None:
                        ended = self.finished(step, result, turn)
                        break
                    held = self.hold(step, entry, notice)
                    continue
                if index <= MAX_CALLS and not held:  # a call not run is not a repeat
                    self.observed(step, index, call, result)
                    self.watch_repeats(call, result, history)
        finally:  # a run that stops mid-turn still commits what the turn changed so far
            note = self.actions.commit(step, turn, called)
        if note:
            entries[-1]["content"] += f"\n{note}"
        if ended:
            return ended
        entries[-1]["content"] += f"\n{self.status()}"
        self.end_step(step, entries[-1], self.changed_files(called))
        return None

    def status(self) -> str:
        """What the model sees after each step: the budget line, then the plan (whole, in
        one line) while it has one, so neither is lost when old turns are shortened."""
        plan = self.planning.line()
        return f"{self.budget.line()}\n{plan}" if plan else self.budget.line()

    def observed(self, step: int, index: int, call: ToolCall, result: ToolResult) -> None:
        """A call that ran: a new plan is kept and journaled; what it showed, counted."""
        tool = get_tool(call.name)
        if call.name == plan_tool.NAME and result.ok:
            self.planning.update(result.data["plan"], step)
        if tool is None or tool.observes:
            self.stuck.observe(self.actions.ctx.outputs.get(step, index) or result.output)

    def changed_files(self, called: list[Called]) -> bool:
        """Whether the step changed the worktree: a file tool's own diff says so; for a
        command, whether the step's commit moved the branch (a tip not known yet, as after
        a file tool's step, counts as a change: the next command step reads it)."""
        changing = [r for c, r in called if (t := get_tool(c.name)) and t.changes_files]
        if any(r.ok and r.paths and r.data.get("diff") for r in changing):
            self.head = None  # committed without asking git: the tip is not known now
            return True
        if all(r.paths is not None for r in changing):
            return False  # no call, or file tools that changed nothing
        if self.actions.on_change is None:
            return True  # no step commits: what a command changed cannot be told
        head, self.head = self.head, self.branch_tip()
        return head is None or self.head is None or head != self.head

    def branch_tip(self) -> str | None:
        ctx = self.actions.ctx
        try:
            found = run_git(ctx.root, "rev-parse", "--verify", "--quiet", "HEAD", env=ctx.git_env)
        except Exception:
            return None
        return (found.stdout.decode().strip() or None) if found.status == 0 else None

    def end_step(self, step: int, entry: Entry, changed: bool) -> None:
        """A step is over: its figures journaled; a run that is stuck warned, then stopped."""
        verdict = self.stuck.step(changed)
        self.budget.metrics.idle_steps = self.stuck.idle
        metrics.report(self.emit, self.budget, step)
        if verdict == "stop":
            raise RunStopped("failed", self.stuck.reason())
        if verdict == "warn":
            warning = self.stuck.warning()
            entry["content"] += f"\n{warning}"
            self.emit("WARNING", "agent", f"step {step}: {warning}", step=step,
                      data={"idle_steps": self.stuck.idle})  # fmt: skip

    def hold(self, step: int, entry: Entry, notice: str) -> bool:
        """A finish held by the check: the model sees why instead of the run ending."""
        entry["content"], entry["short"] = notice, notice.splitlines()[0][:160]
        self.actions.ctx.outputs.keep(step, entry.get("index", 1), notice)
        return True

    def finished(self, step: int, result: ToolResult, turn: Turn) -> Outcome:
        ok = result.data.get("success", True) is not False
        summary = str(result.data.get("summary") or turn.text or "finished").strip()
        if self.repair.still_failing is not None:  # the outcome says so plainly
            summary = f"{summary}\n\n{self.repair.still_failing.plain()}"
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
