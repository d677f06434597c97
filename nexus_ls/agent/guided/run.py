"""Guided mode: the harness drives the run, and a small model only fills in the blanks.

Tiny local models write junk tool arguments, ignore results, loop and claim success they
never checked. So here the harness classifies the task, makes the deterministic tool
calls itself, asks the model one grammar-constrained question per step (with only what
that step needs), checks the result with a tool, and decides when the run is done. The
outcome's summary comes from tool results, never from the model's claims.
"""

from __future__ import annotations

import os
import re
import shlex
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict
from itertools import chain, islice
from typing import Any

from nexus_ls.agent import metrics
from nexus_ls.agent.acting import Actions, Emit, OnChange
from nexus_ls.agent.budget import Budget
from nexus_ls.agent.guided import prompts as ask
from nexus_ls.agent.guided import undo
from nexus_ls.agent.guided.harness import Harness, first_line, passing, tests_line
from nexus_ls.agent.guided.mutations import Mutation, mutations
from nexus_ls.agent.guided.plans import (
    Plan,
    classify,
    definition_pattern,
    editable_lines,
    expected_output,
    focus_line,
    is_test,
    plain_text,
    suspects,
    window,
)
from nexus_ls.agent.guided.search import Candidate, Search
from nexus_ls.agent.model import Model
from nexus_ls.agent.outcome import Outcome, RunStopped, Status
from nexus_ls.agent.planning import Moves, Planning
from nexus_ls.config import Limits
from nexus_ls.errors import NexusError
from nexus_ls.sandbox.paths import PathEscape
from nexus_ls.sandbox.safefs import read_regular
from nexus_ls.tools import ToolContext, ToolResult
from nexus_ls.tools.files import MAX_READ_BYTES
from nexus_ls.tools.listing import project_files
from nexus_ls.tools.output import cap
from nexus_ls.tools.registry import offered

GENERIC_STEPS = 12
RANKED = 12  # generated edits the model is shown to rank
# Answer lengths: a one-line fix is short, and a tiny model that rambles on spends seconds
# a token (an unfinished answer is not JSON, so it is no candidate and costs no step).
FIX_TOKENS = 200
FILE_TOKENS = 600
CODE = re.compile(r"\.(py|js|mjs|ts|tsx|jsx|go|rs|java|kt|rb|php|c|h|cpp|hpp|lua|sh)$")
Done = tuple[Status, str]  # (status, summary)


class GuidedAgent:
    """A run whose loop is a fixed plan per kind of task; see the module docstring. It
    takes what the model loop takes, and composes the same budget and actions."""

    def __init__(
        self,
        model: Model,
        ctx: ToolContext,
        limits: Limits,
        emit: Emit,
        on_change: OnChange | None = None,
        context_window: int | None = None,
    ) -> None:
        self.budget = Budget(limits, model, ctx.cancel or threading.Event())
        self.harness = Harness(model, self.budget, Actions(ctx, self.budget, emit, on_change))
        self.ctx, self.emit, self.limits = ctx, emit, limits
        self.tool, self.answer = self.harness.tool, self.harness.answer
        self.planning = Planning(emit, "guided")  # the moves, journaled as a plan
        self.moves = Moves(self.planning, [])
        self.plans = {
            "create": self.do_create,
            "fix": self.do_fix,
            "append": self.do_append,
            "run_tests": self.do_run_tests,
            "list": self.do_list,
            "explain": self.do_explain,
            "generic": self.do_generic,
        }

    def run(self, task: str, context: str = "", starting: str = "") -> Outcome:
        """`starting` is left out: a small model's prompts hold only what each step needs."""
        status: Status
        try:
            plan = classify(task, self.ctx.root, context)
            self.emit(
                "INFO", "agent", f"guided: the task looks like {plan.describe()}", data=asdict(plan)
            )
            self.moves = Moves(self.planning, moves_for(plan))
            self.move(0)
            status, summary = self.plans[plan.kind](plan, task, context)
            if status == "succeeded":
                self.moves.done(self.budget.steps)
        except RunStopped as stop:
            status, summary = stop.status, str(stop)
        finally:
            metrics.report(self.emit, self.budget, final=True)
        return self.budget.outcome(status, summary, None if status == "succeeded" else summary)

    def move(self, index: int) -> None:
        """The plan's move `index` comes next (at the next step)."""
        self.moves.at(index, self.budget.steps + 1)

    # The plans, one per kind of task.

    def search(
        self,
        apply: Callable[[Candidate], ToolResult],
        check: Callable[[Candidate], tuple[bool, str]],
    ) -> Search:
        return Search(
            self.emit,
            self.budget.steps_left,
            self.limits.candidates,
            lambda: undo.mark(self.ctx.root, self.ctx.git_env),
            apply,
            check,
            self.put_back,
        )

    def put_back(self, at: str) -> ToolResult:
        """The worktree back at commit `at`: files written back, new ones removed, each a
        harness step that runs even when the run must stop."""
        try:
            changes = undo.changes_since(self.ctx.root, self.ctx.git_env, at)
        except NexusError as exc:
            return ToolResult(False, f"git could not say what the try changed: {exc}")
        last = ToolResult(True, "nothing to put back")
        for path, content in changes.restore.items():
            try:
                text = content.decode("utf-8")
            except UnicodeDecodeError:
                return ToolResult(False, f"{path} is not text; it cannot be written back")
            back = {"path": path, "content": text}
            last = self.tool("write_file", back, f"guided: put {path} back", cleanup=True)
            if not last.ok:
                return last
        if changes.remove:
            names = " ".join(shlex.quote(p) for p in changes.remove)
            why = f"guided: remove {', '.join(changes.remove)}, new since the try began"
            last = self.tool("run_command", {"command": f"rm -f -- {names}"}, why, cleanup=True)
            if last.ok and last.data.get("exit_code") not in (0, None):
                return ToolResult(False, f"`rm` failed: {first_line(last)}")
        return last

    def do_create(self, plan: Plan, task: str, context: str) -> Done:
        path = os.path.normpath(str(plan.target))  # as write_file will name it
        runs = path.endswith(".py")
        expected = expected_output(task)
        command = f"python3 {shlex.quote(path)}"
        last = ""  # what the model is told of the last failure

        def candidates() -> Iterator[Candidate]:
            def prompt() -> str:
                return ask.create_prompt(task, context, path, runs, last)

            schema = ask.text_schema("content")
            for value, sampling in self.harness.samples("content", prompt, schema, FILE_TOKENS):
                content = ask.unescape(value["content"])
                content += "" if content.endswith("\n") else "\n"
                yield Candidate("model", sampling.describe(), {"content": content})
                if runs and plain_text(content):  # prose where a program should be
                    wrapped = f"print({content.strip()!r})\n"
                    how = "the model's text, which is not Python, printed by a one-line program"
                    yield Candidate("generated", how, {"content": wrapped})

        def apply(candidate: Candidate) -> ToolResult:
            self.move(1)
            args = {"path": path, "content": candidate.change["content"]}
            return self.tool("write_file", args, f"guided: write {path} ({candidate.describe()})")

        def check(candidate: Candidate) -> tuple[bool, str]:
            nonlocal last
            if not runs:
                return True, f"wrote {path}"
            self.move(2)
            ran = self.tool("run_command", {"command": command}, f"guided: run {path}")
            printed = "\n".join(ran.output.splitlines()[1:])
            if not (ran.ok and ran.data.get("exit_code") == 0):
                last = ask.create_retry(path, candidate.change["content"], ran.output)
                lines = [line for line in ran.output.splitlines()[1:] if line.strip()]
                error = lines[-1].strip() if lines else first_line(ran)  # a traceback's last
                return False, f"`{command}` failed: {error[:200]}"
            if expected and expected.lower() not in printed.lower():
                last = ask.create_retry(path, candidate.change["content"], ran.output)
                last += f" It must print {expected!r}."
                return False, f"`{command}` exited 0 but did not print {expected!r}"
            said = f", printing: {printed.splitlines()[0][:120]}" if printed.strip() else ""
            return True, f"`{command}` exited 0{said}"

        search = self.search(apply, check)
        won = search.run(candidates())
        if won is not None:
            said = search.tried[-1].said
            return "succeeded", f"created {path} with {self.winner(search, won)}; {said}"
        raise RunStopped("failed", self.nothing_found(search, f"{path} is not there"))

    def do_fix(self, plan: Plan, task: str, context: str) -> Done:
        tests = self.tool("run_tests", {}, "guided: run the tests to see what fails")
        if passing(tests):
            return "succeeded", f"nothing to fix: {tests_line(tests)}"
        if not tests.ok:
            raise RunStopped("failed", f"the tests could not run: {first_line(tests)}")
        self.move(1)
        path = plan.target or self.pick_file(task, tests.output)
        read = self.tool(
            "read_file", {"path": path}, f"guided: read {path}, which the tests point at"
        )
        if not read.ok:
            raise RunStopped("failed", f"cannot fix {path}: {first_line(read)}")
        try:  # the file read_file just showed, through the same safe I/O
            raw = read_regular(self.ctx.root, os.path.normpath(path), MAX_READ_BYTES)
            original = raw.decode("utf-8")
        except (OSError, OverflowError, PathEscape, UnicodeDecodeError):
            raise RunStopped("failed", f"cannot fix {path}: it is not UTF-8 text") from None
        first, shown = window(original, focus_line(tests.output, path))
        lines = editable_lines(shown, original)
        if not lines:
            raise RunStopped("failed", f"cannot fix {path}: it has no line that can be edited")
        failed: list[tuple[str, str]] = []
        last = tests

        def from_model() -> Iterator[Candidate]:
            def prompt() -> str:
                tried = ask.fix_tried(failed)
                return ask.fix_prompt(task, path, first, shown, tests.output, tried)

            schema = ask.fix_schema(lines)
            for value, sampling in self.harness.samples("fix", prompt, schema, FIX_TOKENS):
                old = value["line"]
                new = reindent(old, ask.unescape(value["new"]))
                if new.strip() != old.strip():
                    yield Candidate("model", sampling.describe(), {"old": old, "new": new})

        def generated() -> Iterator[Candidate]:
            """The generated edits, the one the model ranks first leading (asked only once
            this source is reached: after the model's own first fix)."""
            made = mutations(original, path, tests.output)
            pick = self.rank(task, path, tests.output, made)
            order = made if pick is None else [made[pick], *made[:pick], *made[pick + 1 :]]
            for m in order:
                note = "the model ranked it first" if pick is not None and m is made[pick] else ""
                how = f"{m.operator} on line {m.number}"
                yield Candidate("generated", how, {"old": m.line, "new": m.new}, note)

        def apply(candidate: Candidate) -> ToolResult:
            self.move(2)
            change = candidate.change
            args = {"path": path, "old": change["old"], "new": change["new"]}
            return self.tool("edit_file", args, f"guided: try {candidate.describe()} in {path}")

        def check(candidate: Candidate) -> tuple[bool, str]:
            nonlocal last
            self.move(3)
            last = self.tool("run_tests", {}, "guided: rerun the tests after the edit")
            if not passing(last):
                failed.append((candidate.change["old"], candidate.change["new"]))
            return passing(last), tests_line(last)

        search = self.search(apply, check)
        # The model's greedy fix, then the generated edits (its pick among them first),
        # then its sampled fixes: a tiny model's samples are rarely right and each costs a
        # model call, while a generated edit costs only a test run.
        model = from_model()
        won = search.run(chain(islice(model, 1), generated(), model))
        if won is not None:
            old, new = won.change["old"].strip(), won.change["new"].strip()
            return "succeeded", (
                f"fixed {path} with {self.winner(search, won)}: `{old}` -> `{new}`; "
                + tests_line(last)
            )
        raise RunStopped(
            "failed", self.nothing_found(search, f"{path} is back as it was; {tests_line(last)}")
        )

    def do_append(self, plan: Plan, task: str, context: str) -> Done:
        path, wanted = os.path.normpath(str(plan.target)), str(plan.text)
        read = self.tool("read_file", {"path": path}, f"guided: read {path}")
        if not read.ok:
            raise RunStopped("failed", f"cannot edit {path}: {first_line(read)}")
        try:
            original = read_regular(self.ctx.root, os.path.normpath(path), MAX_READ_BYTES)
            text = original.decode("utf-8")
        except (OSError, OverflowError, PathEscape, UnicodeDecodeError):
            raise RunStopped("failed", f"cannot edit {path}: it is not UTF-8 text") from None
        joined = text if not text or text.endswith("\n") else text + "\n"

        def candidates() -> Iterator[Candidate]:
            self.move(1)

            def prompt() -> str:
                return ask.append_prompt(task, path, text)

            answers = self.harness.samples("text", prompt, ask.text_schema("text"), 300)
            first = next(answers, None)
            if first is not None:
                line = ask.unescape(first[0]["text"]).strip("\n")
                yield Candidate("model", first[1].describe(), {"content": f"{joined}{line}\n"})
            how = "the text the task quotes, as a new last line"
            yield Candidate("generated", how, {"content": f"{joined}{wanted}\n"})
            for value, sampling in answers:
                line = ask.unescape(value["text"]).strip("\n")
                yield Candidate("model", sampling.describe(), {"content": f"{joined}{line}\n"})

        def apply(candidate: Candidate) -> ToolResult:
            self.move(2)
            args = {"path": path, "content": candidate.change["content"]}
            return self.tool("write_file", args, f"guided: write {path} ({candidate.describe()})")

        def check(candidate: Candidate) -> tuple[bool, str]:
            self.move(3)
            try:
                now = read_regular(self.ctx.root, path, MAX_READ_BYTES).decode("utf-8", "replace")
            except (OSError, OverflowError, PathEscape) as exc:
                return False, f"{path} cannot be read back: {exc}"
            # what was added must hold it: text the file held before does not count
            added = now[len(joined) :] if now.startswith(joined) else ""
            has = wanted in added
            return has, f"{path} {'now holds' if has else 'does not gain'} {wanted!r}"

        search = self.search(apply, check)
        won = search.run(candidates())
        if won is not None:
            return "succeeded", f"added {wanted!r} to {path} with {self.winner(search, won)}"
        raise RunStopped("failed", self.nothing_found(search, f"{path} is back as it was"))

    def rank(self, task: str, path: str, output: str, made: list[Mutation]) -> int | None:
        """Which generated edit the model thinks fixes the test (the tests still decide)."""
        shown = made[:RANKED]
        if len(shown) < 2:
            return None
        options = [f"line {m.number}: `{m.new.strip()}` ({m.operator})" for m in shown]
        prompt = ask.rank_prompt(task, path, output, options)
        numbers = [str(n) for n in range(1, len(shown) + 1)]
        value = self.harness.ask_json(
            "rank", ask.messages(prompt), ask.choice_schema("choice", numbers), 20
        )
        if isinstance(value, dict) and value.get("choice") in numbers:
            return int(value["choice"]) - 1
        return None

    def winner(self, search: Search, won: Candidate) -> str:
        """`a generated edit, candidate 2 of 2 tried (...)`: which won, and from where."""
        n = len(search.tried)
        return f"{won.who()}, candidate {n} of {n} tried {won.details()}"

    def nothing_found(self, search: Search, state: str) -> str:
        why = f"; the search stopped: {search.stopped}" if search.stopped else ""
        return f"no candidate passed its check: tried {search.counts()}{why}; {state}"

    def do_run_tests(self, plan: Plan, task: str, context: str) -> Done:
        tests = self.tool("run_tests", {}, "guided: run the tests and report what they say")
        if not tests.ok:
            raise RunStopped("failed", first_line(tests))
        return "succeeded", first_line(tests)

    def do_list(self, plan: Plan, task: str, context: str) -> Done:
        args = {"pattern": plan.pattern} if plan.pattern else {}
        listed = self.tool("list_files", args, "guided: list the project's files")
        if not listed.ok:
            raise RunStopped("failed", first_line(listed))
        return "succeeded", cap(listed.output, 4000)

    def do_explain(self, plan: Plan, task: str, context: str) -> Done:
        where, text = self.source(plan, context)
        self.move(1)
        prompt = ask.explain_prompt(task, where, text)
        answer = self.answer("explanation", prompt, ask.text_schema("explanation"), 400)
        return "succeeded", str(ask.unescape(answer["explanation"])).strip()

    def do_generic(self, plan: Plan, task: str, context: str) -> Done:
        specs = [tool.spec() for tool in offered("guided")]
        changed: list[str] = []
        last, tests = "", None
        for taken in range(GENERIC_STEPS):
            files = project_files(self.ctx.root, self.ctx.root, None, self.ctx.git_env)
            schema = ask.tools_schema(specs, files if len(files) <= 200 else [])
            prompt = ask.generic_prompt(task, context, files, changed, last)
            value = self.answer("step", prompt, schema)
            name, args = value["tool"], ask.unescape(value["arguments"])
            if name == "finish":
                self.move(1)
                return self.finish(args, changed, tests, taken)
            result = self.tool(name, args, f"guided: the model chose {name} for the task")
            last = f"{name}: {result.output}"
            path = result.data.get("path")
            if result.category == "edit" and result.ok and path and path not in changed:
                changed.append(str(path))
            tests = result if name == "run_tests" else tests
        done = f"; changed {', '.join(changed)}" if changed else ""
        raise RunStopped("failed", f"the model did not finish within {GENERIC_STEPS} steps{done}")

    # Finding what a plan works on.

    def pick_file(self, task: str, output: str) -> str:
        """The file to fix: the one the failing output points at, else the model's pick."""
        found = suspects(self.ctx.root, output)
        if found:
            return found[0]
        listed = self.tool("list_files", {}, "guided: list the files to find the one to fix")
        code = [n for n in listed.output.splitlines()[1:] if CODE.search(n) and not is_test(n)]
        if len(code) <= 1:
            if code:
                return code[0]
            raise RunStopped("failed", "could not tell which file to fix; name it in the task")
        prompt = ask.pick_prompt(task, output)
        return str(self.answer("path", prompt, ask.choice_schema("path", code[:200]))["path"])

    def source(self, plan: Plan, context: str) -> tuple[str, str]:
        """(where, text) of the code to explain: a definition, a named file or the selection."""
        if plan.symbol:
            args = {"pattern": definition_pattern(plan.symbol)}
            if plan.target:
                args["path"] = plan.target
            found = self.tool("search", args, f"guided: find where {plan.symbol} is defined")
            hit = re.search(r"^(.+?):(\d+): ", found.output, re.MULTILINE) if found.ok else None
            if hit:
                path, line = hit.group(1), int(hit.group(2))
                span = {"path": path, "start_line": line, "end_line": line + 59}
                read = self.tool("read_file", span, f"guided: read the definition of {plan.symbol}")
                if read.ok:
                    return f"{path} from line {line}", read.output
        if plan.target:
            read = self.tool("read_file", {"path": plan.target}, f"guided: read {plan.target}")
            if read.ok:
                return plan.target, read.output
            raise RunStopped("failed", first_line(read))
        if context.strip():
            return "The code", context
        raise RunStopped("failed", f"found no definition of {plan.symbol} in the project")

    def finish(
        self, args: dict[str, Any], changed: list[str], tests: ToolResult | None, taken: int
    ) -> Done:
        """End a generic run: facts from tool results first, the model's words marked as such.
        A run that took no step at all has only the model's word for it, so it fails."""
        step = self.budget.take_step()
        ok = args.get("success", True) is not False and taken > 0
        facts = [f"changed {', '.join(changed)}"] if changed else []
        if tests is not None:
            facts.append(tests_line(tests))
            ok = ok and passing(tests)
        said = str(args.get("summary", "")).strip()
        if not taken:
            facts.append("the model finished without taking a single step")
        summary = "; ".join(facts + ([f"the model says: {said}"] if said else [])) or "finished"
        self.emit("INFO", "agent", f"step {step}: finish — {summary}", step=step, data=args)
        return ("succeeded" if ok else "failed"), summary


def moves_for(plan: Plan) -> list[str]:
    """The moves of a kind of task, as the plan the user watches."""
    path = str(plan.target)
    if plan.kind == "fix":
        return [
            "run the tests to see what fails",
            "find and read the file to fix",
            "make the next candidate fix (the model's, or a generated edit of a suspect line)",
            "rerun the tests: keep the fix, or put the file back and try the next",
        ]
    if plan.kind == "create":
        moves = [f"ask the model for candidates of {path}", f"write the next candidate of {path}"]
        if path.endswith(".py"):
            return [*moves, f"run {path}: keep it, or remove it and try the next"]
        return moves
    if plan.kind == "append":
        return [
            f"read {path}",
            f"ask the model what to add to {path}",
            f"write the next candidate of {path}",
            f"check {path} holds {plan.text!r}: keep it, or put it back and try the next",
        ]
    if plan.kind == "explain":
        return ["find the code to explain", "ask the model to explain it"]
    if plan.kind == "run_tests":
        return ["run the tests and report what they say"]
    if plan.kind == "list":
        return ["list the project's files"]
    return [
        f"let the model choose each step (at most {GENERIC_STEPS})",
        "finish and check the outcome",
    ]


def reindent(old: str, new: str) -> str:
    """Give an unindented replacement the indentation of the line it replaces."""
    new = new.rstrip("\n")
    indent = old[: len(old) - len(old.lstrip())]
    if not indent or not new or new[0].isspace():
        return new
    return "\n".join(indent + line if line.strip() else line for line in new.split("\n"))
