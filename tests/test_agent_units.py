"""The agent's parts on their own: how guided mode reads a task and checks an answer, how
text-mode calls are parsed, how the history is kept bounded, the budget, the validator;
then the loop's rules, in-process on a real repository (only the model is scripted).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from agent_harness import run_agent
from conftest import make_repo, sh
from inprocess_model import InProcessModel
from scripted_model import call, raw_call, say

from nexus_ls.agent import prompts
from nexus_ls.agent.budget import Budget
from nexus_ls.agent.guided.plans import Plan, classify, suspects
from nexus_ls.agent.guided.prompts import fits, fix_schema, text_schema, tools_schema
from nexus_ls.agent.guided.run import reindent
from nexus_ls.agent.history import Entry, fold, shorten
from nexus_ls.agent.model import ModelError, ToolCall, Turn
from nexus_ls.agent.outcome import RunStopped
from nexus_ls.agent.textmode import parse_call
from nexus_ls.config import Limits
from nexus_ls.tools.registry import offered
from nexus_ls.validation import Invalid, Strict, validate

CALC = "def add(a, b):\n    return a - b\n"
TESTS = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"

# Guided mode: what kind of task it is, judged from the words and the worktree.

WORKTREES: dict[str, dict[str, str]] = {
    "bare": {"README.md": "demo\n"},
    "tested": {"calc.py": CALC, "test_calc.py": TESTS, "README.md": "demo\n"},
    "nested": {"src/app.py": "x = 1\n", "tests/test_app.py": "def test(): pass\n"},
}


@pytest.mark.parametrize(
    ("worktree", "task", "plan"),
    [
        ("bare", "create hello.py that prints a greeting", Plan("create", target="hello.py")),
        ("bare", "write tool.py that prints the date", Plan("create", target="tool.py")),
        ("bare", "add a file docs/usage.md", Plan("create", target="docs/usage.md")),
        ("bare", "create ./notes.txt", Plan("create", target="notes.txt")),
        ("bare", "create README.md", Plan("generic")),  # it exists: not a file to create
        ("bare", "create ../outside.py", Plan("generic")),  # outside the worktree
        ("bare", "create hello.xyz", Plan("generic")),  # no known extension
        ("bare", "fix the bug", Plan("generic")),  # no tests to tell it is fixed
        ("tested", "fix the failing test", Plan("fix")),
        ("tested", "fix the bug in calc.py", Plan("fix", target="calc.py")),
        ("tested", "test_calc.py fails, fix it", Plan("fix")),  # a test is not the target
        ("tested", "Fix: calc.py is BROKEN", Plan("fix", target="calc.py")),
        ("nested", "repair src/app.py", Plan("fix", target="src/app.py")),
        ("tested", "run the tests and report the result", Plan("run_tests")),
        ("tested", "execute pytest", Plan("run_tests")),
        ("tested", "write tests for add and run them", Plan("generic")),
        ("tested", "explain what the function add() does", Plan("explain", symbol="add")),
        ("tested", "explain calc.py", Plan("explain", target="calc.py")),
        ("tested", "describe `add` in calc.py", Plan("explain", "calc.py", "add")),
        ("tested", "what does class Calculator do", Plan("explain", symbol="Calculator")),
        ("tested", "what is this project about", Plan("generic")),  # nothing to explain
        ("bare", "list the files in this project", Plan("list")),
        ("bare", "list the *.py files", Plan("list", pattern="*.py")),
        ("nested", "which files are there under src/*", Plan("list", pattern="src/*")),
        ("tested", "make nothing() return zero", Plan("generic")),
        ("tested", "tidy up the project", Plan("generic")),
    ],
)
def test_classify(tmp_path: Path, worktree: str, task: str, plan: Plan) -> None:
    root = make_repo(tmp_path / worktree, WORKTREES[worktree])
    assert classify(task, root) == plan


def test_classify_explains_the_selection_given_as_context(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "bare", WORKTREES["bare"])
    assert classify("what does this do", root, "x = compute()\n") == Plan("explain")
    assert classify("what does this do", root) == Plan("generic")


def test_plans_describe_what_they_found() -> None:
    assert Plan("fix", target="calc.py").describe() == "fix (file calc.py)"
    assert Plan("explain", "calc.py", "add").describe() == "explain (file calc.py, symbol add)"
    assert Plan("run_tests").describe() == "run tests"


def test_suspects_never_follow_links_or_leave_the_worktree(tmp_path: Path) -> None:
    root = tmp_path / "wt"
    root.mkdir()
    (root / "calc.py").write_text("x = 1\n")
    secret = tmp_path / "secret_test.py"
    secret.write_text("import calc\n")
    (root / "test_link.py").symlink_to(secret)
    output = "FAILED test_link.py::t\nFAILED ../secret_test.py::t\ncalc.py:1: AssertionError\n"
    assert suspects(root, output) == ["calc.py"]


def test_suspects_are_code_first_then_what_failing_tests_import(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "wt", {"calc.py": CALC, "test_calc.py": TESTS, "other.py": ""})
    assert suspects(root, "FAILED test_calc.py::test_add - assert -1 == 5\n") == [
        "calc.py",
        "test_calc.py",
    ]


# Guided mode: whether an answer fits the schema it was asked with (an endpoint may ignore it).

GUIDED_TOOLS = tools_schema([tool.spec() for tool in offered("guided")], ["calc.py"])
NUMBERS = {
    "type": "object",
    "properties": {"n": {"type": "integer"}, "x": {"type": "number"}, "b": {"type": "boolean"}},
}


@pytest.mark.parametrize(
    ("value", "schema", "expected"),
    [
        ({"content": "print(1)"}, text_schema("content"), True),
        ({"content": "   "}, text_schema("content"), False),  # blank is not content
        ({}, text_schema("content"), False),
        ({"content": "x", "more": 1}, text_schema("content"), False),
        ({"content": 3}, text_schema("content"), False),
        ("print(1)", text_schema("content"), False),
        (["content"], text_schema("content"), False),
        ({"line": "a", "new": "b"}, fix_schema(["a", "c"]), True),
        ({"line": "invented", "new": "b"}, fix_schema(["a", "c"]), False),
        ({"line": "a"}, fix_schema(["a", "c"]), False),
        ({"line": "a", "new": ""}, fix_schema(["a", "c"]), True),  # deleting a line's text
        ({"tool": "read_file", "arguments": {"path": "calc.py"}}, GUIDED_TOOLS, True),
        ({"tool": "read_file", "arguments": {"path": "other.py"}}, GUIDED_TOOLS, False),
        ({"tool": "read_file", "arguments": {}}, GUIDED_TOOLS, False),
        ({"tool": "fly", "arguments": {}}, GUIDED_TOOLS, False),
        ({"tool": "finish", "arguments": {"summary": "done"}}, GUIDED_TOOLS, True),
        ({"n": 3, "x": 1.5, "b": False}, NUMBERS, True),
        ({"x": 2}, NUMBERS, True),  # an integer is a number
        ({"n": True}, NUMBERS, False),  # a boolean is not an integer
        ({"x": True}, NUMBERS, False),
        ({"n": 1.5}, NUMBERS, False),
        ({"b": 0}, NUMBERS, False),
        ({"n": 3.0}, NUMBERS, True),  # as tool arguments count it
        (
            {"tool": "read_file", "arguments": {"path": "calc.py", "start_line": 0}},
            GUIDED_TOOLS,
            False,
        ),  # below the tool's minimum
    ],
)
def test_fits(value: Any, schema: dict[str, Any], expected: bool) -> None:
    assert fits(value, schema) is expected


# Text mode: a call is one fenced JSON block in the reply.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'I look at it.\n```json\n{"tool": "read_file", "arguments": {"path": "a.py"}}\n```\n',
            ("I look at it.", "read_file", '{"path": "a.py"}'),
        ),
        (
            'Before.\n```\n{"name": "list_files", "args": {"pattern": "*.py"}}\n```\nAfter.',
            ("Before.\n\nAfter.", "list_files", '{"pattern": "*.py"}'),
        ),
        ('```json\n{"tool": "finish"}\n```', ("", "finish", "{}")),
        (
            '```json\n{not json\n```\n```json\n{"tool": "list_files", "arguments": {}}\n```',
            ("```json\n{not json\n```", "list_files", "{}"),
        ),
        ("I think it is fine.", None),
        ('{"tool": "read_file", "arguments": {}}', None),  # not fenced
        ('```json\n{"arguments": {"path": "a.py"}}\n```', None),  # no tool named
        ('```json\n["read_file", {"path": "a.py"}]\n```', None),
        ('```json\n{"tool": 7, "arguments": {}}\n```', None),
    ],
)
def test_parse_call(text: str, expected: tuple[str, str, str] | None) -> None:
    assert parse_call(text) == expected


# Guided fix: the model's replacement line takes the indentation of the line it replaces.


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("    return a - b", "return a + b", "    return a + b"),
        ("    return a - b", "        return a + b", "        return a + b"),  # its own indent
        ("return a - b", "return a + b", "return a + b"),
        ("\tx = 1", "x = 2", "\tx = 2"),
        ("    if x:", "if x:\n    y()\n\nz()", "    if x:\n        y()\n\n    z()"),
        ("    return a - b", "return a + b\n", "    return a + b"),
        ("    return a - b", "", ""),
    ],
)
def test_reindent(old: str, new: str, expected: str) -> None:
    assert reindent(old, new) == expected


# The history: old observations shortened, old turns folded into a note.


def turn(step: int, name: str, arguments: dict[str, Any], output: str, short: str) -> list[Entry]:
    called = ToolCall(f"call_{step}", name, json.dumps(arguments))
    return [
        {"role": "assistant", "content": f"step {step}", "calls": [called], "step": step},
        {"role": "tool", "call": called, "content": output, "step": step, "index": 1,
         "short": short},
    ]  # fmt: skip


def conversation(steps: int) -> list[Entry]:
    history: list[Entry] = [
        {"role": "system", "content": "system"},
        {"role": "user", "content": "the task"},
    ]
    for step in range(1, steps + 1):
        history += turn(step, "read_file", {"path": f"f{step}.py"}, "x" * 3000, f"f{step}.py (9)")
    return history


def test_shorten_leaves_the_last_turns_whole() -> None:
    history = conversation(5)
    assert shorten(history, current_step=5, keep=3) == 4  # steps 1 and 2: call and result
    assert [e["content"] for e in history[:2]] == ["system", "the task"]
    assert history[3]["content"] == (
        'f1.py (9) [shortened; read_output {"step": 1} shows it whole]'
    )
    assert history[5]["content"].startswith("f2.py (9) [shortened")
    assert all(e["content"] == "x" * 3000 for e in history if e.get("step", 0) >= 3 and
               e["role"] == "tool")  # fmt: skip
    assert shorten(history, current_step=5, keep=3) == 0  # once is enough
    assert shorten(history, current_step=6, keep=3) == 2  # step 3 is old now


def test_shorten_cuts_long_arguments_of_old_calls() -> None:
    history = conversation(0)
    history += turn(1, "write_file", {"path": "a.txt", "content": "y" * 1000}, "wrote", "wrote")
    history += turn(2, "write_file", {"path": "b.txt", "content": "y" * 10}, "wrote", "wrote")
    history.append({"role": "assistant", "content": "z" * 2000, "calls": [], "step": 3})
    bad = ToolCall("c", "read_file", "{" + "q" * 500)
    history.append({"role": "assistant", "content": "", "calls": [bad], "step": 4})
    shorten(history, current_step=10, keep=3)
    first, second = history[2]["calls"][0], history[4]["calls"][0]
    assert json.loads(first.arguments) == {
        "path": "a.txt",
        "content": "<1,000 characters, shortened>",
    }
    assert json.loads(second.arguments) == {"path": "b.txt", "content": "y" * 10}
    assert history[6]["content"] == "z" * 400 + " [... shortened]"  # a text-mode call
    assert history[7]["calls"][0].arguments == "{}"  # unreadable and long: dropped


def test_fold_replaces_old_turns_by_one_note_and_keeps_it_on_later_folds() -> None:
    history = conversation(5)
    assert fold(history, current_step=5, keep=3) == 4
    assert [e["content"] for e in history[:2]] == ["system", "the task"]
    note = history[2]
    assert note["role"] == "user" and note["content"].splitlines()[1:] == [
        "- step 1: read_file: f1.py (9)",
        "- step 2: read_file: f2.py (9)",
    ]
    assert [e["step"] for e in history[3:]] == [3, 3, 4, 4, 5, 5]
    history += turn(6, "list_files", {}, "2 files", "2 files")
    history += turn(7, "list_files", {}, "2 files", "2 files")
    assert fold(history, current_step=7, keep=3) == 5  # the note and steps 3 and 4
    notes = [e for e in history if e.get("folded")]
    assert len(notes) == 1 and notes[0]["content"].splitlines()[1:] == [
        f"- step {n}: read_file: f{n}.py (9)" for n in (1, 2, 3, 4)
    ]
    assert [e["step"] for e in history[3:]] == [5, 5, 6, 6, 7, 7]


def test_fold_needs_two_old_entries() -> None:
    assert fold(conversation(3), current_step=3, keep=3) == 0  # nothing is old yet
    history = conversation(0)
    history.append({"role": "user", "content": prompts.NO_TOOL_CALL, "step": 1})
    for step in (2, 3, 4):
        history += turn(step, "list_files", {}, "2 files", "2 files")
    assert fold(history, current_step=4, keep=3) == 0  # one old message: no note for it
    assert not any(e.get("folded") for e in history) and len(history) == 9


# The budget: steps, tokens, time and cancel.


def budget(**limits: Any) -> tuple[Budget, threading.Event]:
    cancel = threading.Event()
    return Budget(Limits(**limits), InProcessModel([]), cancel), cancel


def test_budget_steps_stop_at_the_limit() -> None:
    spent, _ = budget(max_steps=2)
    assert [spent.take_step(), spent.take_step()] == [1, 2]
    with pytest.raises(RunStopped, match=r"^step limit reached \(2 steps\)$") as stopped:
        spent.take_step()
    assert stopped.value.status == "failed" and spent.steps == 2
    with pytest.raises(RunStopped, match="step limit"):  # no model call whose answer cannot run
        spent.call_model(lambda: pytest.fail("the model was called past the step limit"))


def test_budget_tokens_count_both_ways_and_stop_past_the_limit() -> None:
    spent, _ = budget(max_tokens=100)
    spent.count(Turn("", "", prompt_tokens=60, completion_tokens=40))
    spent.check_tokens()  # at the limit is still within it
    spent.count(Turn("", "", prompt_tokens=1))
    with pytest.raises(RunStopped, match=r"^token limit reached \(100 tokens\)$"):
        spent.check_tokens()
    assert spent.outcome("failed", "x").tokens == {"prompt": 61, "completion": 40}


def test_budget_line_says_what_is_left() -> None:
    spent, _ = budget(max_steps=10, max_tokens=50_000, wall_time=125.5)
    assert spent.line() == "[budget left: 10 steps, 50,000 tokens, 2 min 5 s]"
    spent.take_step()
    spent.count(Turn("", "", prompt_tokens=1234, completion_tokens=10))
    assert spent.line() == "[budget left: 9 steps, 48,756 tokens, 2 min 5 s]"
    short, _ = budget(max_steps=1, max_tokens=10, wall_time=30.5)
    short.take_step()
    short.count(Turn("", "", prompt_tokens=500))
    assert short.line() == "[budget left: 0 steps, 0 tokens, 30 s]"  # never negative


def test_budget_time_and_cancel_end_the_run() -> None:
    spent, cancel = budget(wall_time=7)
    spent.check()
    spent.model.deadline = time.monotonic() - 1
    with pytest.raises(RunStopped, match=r"^time limit reached \(7 s\)$"):
        spent.check()
    assert spent.line().endswith("tokens, 0 s]")
    cancel.set()
    with pytest.raises(RunStopped, match="cancelled by the user") as stopped:
        spent.check()
    assert stopped.value.status == "cancelled"


def test_a_model_call_ended_by_a_cancel_is_a_cancel_not_an_endpoint_failure() -> None:
    spent, cancel = budget()

    def interrupted() -> None:
        cancel.set()
        raise ModelError("cancelled while waiting for the model")

    with pytest.raises(RunStopped) as stopped:
        spent.call_model(interrupted)
    assert stopped.value.status == "cancelled"

    def down() -> None:
        raise ModelError("endpoint down")

    other, _ = budget()
    with pytest.raises(ModelError, match="endpoint down"):  # not cancelled: the endpoint's
        other.call_model(down)


def test_the_run_wall_time_bounds_the_model() -> None:
    spent, _ = budget(wall_time=60)
    assert 59 < spent.model.deadline - time.monotonic() <= 60


# The validator of what arrives as JSON.


class Shape(Strict):
    path: str
    count: int | None = None
    ratio: float = 1.0
    flag: bool = False


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ({}, "missing required argument(s) path"),
        ({"path": None}, "missing required argument(s) path"),  # null is leaving it out
        ({"path": "a", "bogus": 1, "also": 2}, "unexpected argument(s) also, bogus"),
        ({"path": 5}, "argument path must be of type string, not integer"),
        ({"path": "a", "count": "5"}, "argument count must be of type integer, not string"),
        ({"path": "a", "count": 3.5}, "argument count must be of type integer, not number"),
        ({"path": "a", "count": True}, "argument count must be of type integer, not boolean"),
        ({"path": "a", "flag": 1}, "argument flag must be of type boolean, not integer"),
        ([{"path": "a"}], "the arguments must be a JSON object, not array"),
        (None, "the arguments must be a JSON object, not null"),
    ],
)
def test_validate_refuses(value: Any, error: str) -> None:
    with pytest.raises(Invalid) as refused:
        validate(Shape, value)
    assert str(refused.value) == error


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"path": "a"}, Shape(path="a")),
        ({"path": "a", "count": None, "flag": None}, Shape(path="a")),  # nulls are dropped
        ({"path": "a", "count": 3.0}, Shape(path="a", count=3)),  # 3.0 is an integer
        ({"path": "a", "ratio": 2}, Shape(path="a", ratio=2.0)),
        ({"path": "a", "flag": True}, Shape(path="a", flag=True)),
    ],
)
def test_validate_accepts(value: dict[str, Any], expected: Shape) -> None:
    got = validate(Shape, value)
    assert got == expected
    assert type(got.count) is type(expected.count)


def test_validate_names_what_it_checks() -> None:
    with pytest.raises(Invalid, match="^missing required field"):
        validate(Shape, {}, noun="field")


# The loop's rules, in-process: each as the model sees it, and as the run ends.


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "proj", {"hello.py": "print('hello')\n"})


def test_unknown_tool_is_an_observation_not_a_crash(repo: Path) -> None:
    ran = run_agent(repo, [call("fly_to_moon", speed=3), call("finish", summary="gave up flying")])
    assert ran.outcome.status == "succeeded" and ran.outcome.summary == "gave up flying"
    seen = ran.model.prompts[1][-1]
    assert seen["role"] == "tool"
    assert seen["content"].startswith("error:")
    assert "fly_to_moon" in seen["content"] and "read_file" in seen["content"]


def test_malformed_arguments_are_an_error_observation(repo: Path) -> None:
    script = [raw_call("read_file", '{"path": "hello.py"'), call("finish", summary="ok")]
    ran = run_agent(repo, script)
    assert ran.outcome.status == "succeeded"
    seen = ran.model.prompts[1][-1]
    assert seen["role"] == "tool" and seen["content"].startswith("error:")
    assert "JSON" in seen["content"] and "print('hello')" not in seen["content"]


def test_wrong_arguments_say_what_the_tool_takes(repo: Path) -> None:
    ran = run_agent(repo, [call("read_file", file="hello.py"), call("finish", summary="ok")])
    seen = ran.model.prompts[1][-1]["content"]
    assert seen.startswith("error:") and "file" in seen and "path: string" in seen


def test_model_words_are_the_rationale(repo: Path) -> None:
    script = [
        call("write_file", "A greeting file makes the demo friendlier.", path="g.txt",
             content="hi\n"),
        call("finish", summary="wrote g.txt"),
    ]  # fmt: skip
    ran = run_agent(repo, script)
    body = sh(repo, "git", "log", "-1", "--format=%B")
    # The model's words name the commit; the tool's own summary says what changed.
    assert body.startswith("A greeting file makes the demo friendlier\n\n- create g.txt\n")
    assert sh(repo, "git", "show", "HEAD:g.txt") == "hi\n"
    written = [e for e in ran.events if e["data"].get("tool") == "write_file"]
    assert written[0]["data"]["rationale"] == "A greeting file makes the demo friendlier."


def test_step_limit_fails_the_run(repo: Path) -> None:
    ran = run_agent(repo, [call("list_files") for _ in range(5)], limits=Limits(max_steps=2))
    assert ran.outcome.status == "failed"
    assert ran.outcome.summary == "step limit reached (2 steps)"
    assert len(ran.model.prompts) == 2  # no model call once the steps are spent
    assert ran.outcome.steps == 2


def test_token_limit_fails_the_run(repo: Path) -> None:
    ran = run_agent(repo, [call("list_files"), call("list_files")], limits=Limits(max_tokens=50))
    assert ran.outcome.status == "failed"
    assert ran.outcome.summary == "token limit reached (50 tokens)"
    assert len(ran.model.prompts) == 1
    assert not [e for e in ran.events if "arguments" in e["data"]]  # its call never ran


def test_repeated_failing_call_warns_then_stops(repo: Path) -> None:
    ran = run_agent(repo, [call("read_file", path="missing.py") for _ in range(6)])
    assert ran.outcome.status == "failed" and "5 times" in ran.outcome.summary
    assert len(ran.model.prompts) == 5

    def warned(n: int) -> int:
        return sum("same failing call" in m["content"] for m in ran.model.prompts[n])

    assert [warned(n) for n in range(5)] == [0, 0, 0, 1, 1]  # once, after the third


def test_a_different_call_resets_the_repeat_count(repo: Path) -> None:
    bad, other = call("read_file", path="missing.py"), call("read_file", path="gone.py")
    ran = run_agent(repo, [bad, bad, other, bad, bad, call("finish", summary="ok")])
    assert ran.outcome.status == "succeeded"
    assert not any("same failing call" in m["content"] for m in ran.model.prompts[-1])


def test_text_without_tool_call_gets_a_nudge(repo: Path) -> None:
    ran = run_agent(repo, [say("I think it is fine."), call("finish", summary="ok")])
    assert ran.outcome.status == "succeeded" and ran.outcome.steps == 2
    nudge = ran.model.prompts[1][-1]
    assert nudge["role"] == "user" and nudge["content"].startswith(prompts.NO_TOOL_CALL)
    assert "[budget left: 39 steps," in nudge["content"]


def test_finish_that_gives_up_is_a_failure(repo: Path) -> None:
    ran = run_agent(repo, [call("finish", summary="cannot do it", success=False)])
    assert ran.outcome.status == "failed" and ran.outcome.summary == "cannot do it"
    assert ran.outcome.error == "the agent gave up: cannot do it"
