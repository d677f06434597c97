"""The journal-event -> ACP session-update mapping of `nexus acp` (pure, no process)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from acp.schema import (
    AgentMessageChunk,
    AgentPlanUpdate,
    AgentThoughtChunk,
    AllowedOutcome,
    ContentToolCallContent,
    DeniedOutcome,
    FileEditToolCallContent,
    RequestPermissionResponse,
    ToolCallProgress,
    ToolCallStart,
)

from nexus_ls.acp import updates
from nexus_ls.acp.server import prompt_text

ROOT = Path("/home/me/calc")
RUN = "20261202-110829875-d1e0"


def event(category: str, message: str, step: int | None = None, **data: Any) -> dict[str, Any]:
    return {"level": "INFO", "category": category, "run": RUN, "step": step,
            "message": message, "data": data}  # fmt: skip


def turn(step: int, text: str, *calls: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    listed = [{"id": f"c{i}", "name": n, "arguments": json.dumps(a)} for i, (n, a) in
              enumerate(calls)]  # fmt: skip
    return event("model", "model answered in 5 ms", step, text=text, calls=listed)


def tool(step: int, name: str, ok: bool, result: str, call: int = 1, **args: Any) -> dict[str, Any]:
    category = {"run_command": "command", "edit_file": "edit"}.get(name, "tool")
    return event(category, f"step {step}: {name} — {result.splitlines()[0]}", step, tool=name,
                 arguments=args, ok=ok, result=result, call=call, details={})  # fmt: skip


def test_a_model_turn_starts_its_calls_and_their_events_end_them() -> None:
    mapper = updates.RunUpdates(RUN, ROOT)
    started = mapper.event(
        turn(
            2,
            "Look, then run.",
            ("read_file", {"path": "calc.py"}),
            ("run_command", {"command": "pytest -q"}),
        )  # fmt: skip
    )
    thought, read, run = started
    assert isinstance(thought, AgentThoughtChunk) and thought.content.text == "Look, then run.\n"
    assert isinstance(read, ToolCallStart) and isinstance(run, ToolCallStart)
    assert (read.tool_call_id, read.title, read.kind, read.status) == (
        f"{RUN}/2.1", "read_file calc.py", "read", "in_progress")  # fmt: skip
    assert read.locations is not None and read.locations[0].path == "/home/me/calc/calc.py"
    assert read.raw_input == {"path": "calc.py"}
    assert (run.tool_call_id, run.title, run.kind) == (f"{RUN}/2.2", "run_command pytest -q",
                                                       "execute")  # fmt: skip

    (done,) = mapper.event(tool(2, "read_file", True, "1\tdef add", path="calc.py"))
    (failed,) = mapper.event(tool(2, "run_command", False, "exit code 1\nFAILED", call=2))
    assert isinstance(done, ToolCallProgress) and isinstance(failed, ToolCallProgress)
    assert (done.tool_call_id, done.status, done.title) == (
        f"{RUN}/2.1", "completed", "read_file — 1\tdef add")  # fmt: skip
    assert (failed.tool_call_id, failed.status) == (f"{RUN}/2.2", "failed")
    assert isinstance(failed.content[0], ContentToolCallContent)
    assert failed.content[0].content.text == "exit code 1\nFAILED"
    assert mapper.open == {}


def test_a_call_with_no_turn_before_it_starts_and_ends_at_once() -> None:
    """Guided mode's harness calls tools itself: no model turn announces them."""
    (update,) = updates.RunUpdates(RUN, ROOT).event(
        tool(1, "run_tests", True, "tests: 1 passed, 1 failed (exit 1)", command="pytest")
    )
    assert isinstance(update, ToolCallStart)
    assert (update.tool_call_id, update.status, update.kind) == (f"{RUN}/1.1", "completed",
                                                                 "execute")  # fmt: skip


def test_a_plan_event_is_the_whole_plan() -> None:
    plan = [{"text": "read", "status": "done"}, {"text": "fix", "status": "in_progress"},
            {"text": "check", "status": "pending"}]  # fmt: skip
    (update,) = updates.RunUpdates(RUN, ROOT).event(
        event(
            "agent",
            "step 3: plan 2/3: fix",
            3,
            plan=plan,
            current=2,
            done=1,
            total=3,
            source="model",
        )  # fmt: skip
    )
    assert isinstance(update, AgentPlanUpdate)
    assert [(e.content, e.status, e.priority) for e in update.entries] == [
        ("read", "completed", "medium"), ("fix", "in_progress", "medium"),
        ("check", "pending", "medium")]  # fmt: skip


def test_a_broken_plan_or_a_sub_agents_plan_is_not_the_sessions() -> None:
    mapper = updates.RunUpdates(RUN, ROOT)
    broken = event("agent", "step 1: plan", 1, plan=[{"text": "x", "status": "maybe"}])
    child = {**event("agent", "step 1: plan 1/1: x", 1, plan=[{"text": "x", "status": "pending"}]),
             "run": f"{RUN}-1"}  # fmt: skip
    assert mapper.event(broken) == [] and mapper.event(child) == []


def test_a_commit_is_an_edit_with_each_files_diff() -> None:
    commit = event("edit", "step 4: commit e18c98cc7d The sign is wrong", 4, commit="e18c98cc7d9f",
                   files=["calc.py", "new.py", "blob.bin"], diff="diff --git ...",
                   tool="edit_file", rationale="")  # fmt: skip
    assert updates.is_commit(commit)
    texts = {"calc.py": ("a - b\n", "a + b\n"), "new.py": (None, "x = 1\n")}
    (update,) = updates.RunUpdates(RUN, ROOT).event(commit, texts)
    assert isinstance(update, ToolCallStart)
    assert (update.tool_call_id, update.kind, update.status, update.title) == (
        f"{RUN}/4.commit", "edit", "completed", "commit e18c98cc7d The sign is wrong")  # fmt: skip
    calc, new, patch = update.content or []
    assert isinstance(calc, FileEditToolCallContent) and isinstance(new, FileEditToolCallContent)
    assert (calc.path, calc.old_text, calc.new_text) == ("/home/me/calc/calc.py", "a - b\n",
                                                         "a + b\n")  # fmt: skip
    assert (new.old_text, new.new_text) == (None, "x = 1\n")  # a new file has no old text
    # blob.bin's text is not known: the patch stands for it.
    assert isinstance(patch, ContentToolCallContent) and patch.content.text == "diff --git ..."
    assert [loc.path for loc in update.locations or []] == [
        "/home/me/calc/calc.py", "/home/me/calc/new.py", "/home/me/calc/blob.bin"]  # fmt: skip


def test_finish_ends_its_call_and_the_run_end_closes_the_rest() -> None:
    mapper = updates.RunUpdates(RUN, ROOT)
    mapper.event(turn(5, "", ("finish", {"summary": "add adds"})))
    (closed,) = mapper.event(event("agent", "step 5: finish — add adds", 5, summary="add adds",
                                   success=True, rationale=""))  # fmt: skip
    assert isinstance(closed, ToolCallProgress)
    assert (closed.tool_call_id, closed.status) == (f"{RUN}/5.1", "completed")

    mapper.event(turn(6, "", ("run_command", {"command": "sleep 30"})))
    dangling, said = mapper.end(RUN, "cancelled", "cancelled by the user", f"nexus/{RUN}")
    assert isinstance(dangling, ToolCallProgress)
    assert (dangling.tool_call_id, dangling.status) == (f"{RUN}/6.1", "failed")
    assert isinstance(said, AgentMessageChunk)
    assert said.content.text.startswith("\nrun cancelled: cancelled by the user\n\nbranch `nexus/")
    assert f"`nexus accept {RUN}`" in said.content.text


def test_the_sandbox_is_said_and_housekeeping_is_not() -> None:
    mapper = updates.RunUpdates(RUN, ROOT)
    (said,) = mapper.event(event("run", "sandbox: bubblewrap; network off"))
    assert isinstance(said, AgentMessageChunk)
    assert said.content.text == "NEXUS sandbox: bubblewrap; network off\n"
    assert mapper.event({**event("agent", "shortened 3 older messages", 9), "level": "DEBUG"}) == []
    assert (
        mapper.event(event("command", "asking to run `git push`", None, command="git push")) == []
    )
    assert mapper.event(event("metric", "metrics", 2, steps=2)) == []


def test_a_sub_agents_calls_are_named_as_its() -> None:
    mapper = updates.RunUpdates(RUN, ROOT)
    child = {**turn(1, "", ("read_file", {"path": "a.py"})), "run": f"{RUN}-2"}
    (start,) = mapper.event(child)
    assert isinstance(start, ToolCallStart)
    assert (start.tool_call_id, start.title) == (f"{RUN}-2/1.1", "sub-agent 2: read_file a.py")


def test_stop_reasons() -> None:
    assert updates.stop_reason("succeeded", None) == "end_turn"
    assert updates.stop_reason("cancelled", "cancelled by the user") == "cancelled"
    assert updates.stop_reason("interrupted", "the host stopped") == "cancelled"
    assert updates.stop_reason("failed", "step limit reached (10 steps)") == "max_turn_requests"
    assert updates.stop_reason("failed", "token limit reached (5 tokens)") == "max_tokens"
    assert updates.stop_reason("failed", "the agent gave up: no") == "refusal"


def test_permission_answers_are_the_supervisors_decisions() -> None:
    def chose(option: str) -> RequestPermissionResponse:
        return RequestPermissionResponse(outcome=AllowedOutcome(outcome="selected",
                                                                option_id=option))  # fmt: skip

    assert [o.option_id for o in updates.OPTIONS] == ["once", "run", "deny"]
    assert updates.decision(chose("once")) == ("once", "the ACP client's user")
    assert updates.decision(chose("run")) == ("run", "the ACP client's user")
    assert updates.decision(chose("deny")) == ("deny", "the ACP client's user")
    assert updates.decision(chose("always"))[0] == "deny"
    cancelled = RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
    assert updates.decision(cancelled) == ("deny", "the ACP client's user cancelled the question")
    assert updates.permission_title({"command": "git push\norigin", "network": True,
                                     "reason": "rule `git push` -> ask"}) == (
        "Run `git push\\norigin` with network? (rule `git push` -> ask)")  # fmt: skip


def test_the_prompts_text_is_the_task_and_attached_files_its_context() -> None:
    from acp.schema import EmbeddedResourceContentBlock, TextContentBlock, TextResourceContents

    blocks = [
        TextContentBlock(type="text", text="fix add"),
        EmbeddedResourceContentBlock(type="resource", resource=TextResourceContents(
            uri="file:///home/me/calc/calc.py", text="def add(a, b): ...")),
    ]  # fmt: skip
    task, context = prompt_text(blocks)
    assert task == "fix add"
    assert context == (
        "file:///home/me/calc/calc.py (attached by the user):\n```\ndef add(a, b): ...\n```"
    )
    assert prompt_text([TextContentBlock(type="text", text=" \n ")]) == ("", "")
