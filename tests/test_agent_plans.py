"""Plans, metrics and the stuck detector, in-process: what the model is shown after each
step, and what the journal keeps (`update_plan`, `metric` events, stuck warnings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from agent_harness import Ran, run_agent
from conftest import make_repo
from inprocess_model import answer
from scripted_model import call, say
from test_guided import CALC, TESTS

from nexus_ls.agent.stuck import STOP_AFTER, WARN_AFTER, fingerprint
from nexus_ls.config import Limits
from nexus_ls.journal.run_timeline import timeline

STUCK = "stopped: 12 steps in a row changed no file and showed nothing new (the model seems stuck)"


@pytest.fixture(autouse=True)
def bare_pytest(monkeypatch: pytest.MonkeyPatch) -> None:
    """The projects' own test runs load no pytest plugins (commands inherit this
    environment when, as here, there is no sandbox)."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.fixture
def calc(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "proj", {"calc.py": CALC, "test_calc.py": TESTS})


def plan(*steps: tuple[str, str], words: str = "") -> dict[str, Any]:
    return call("update_plan", words, steps=[{"text": t, "status": s} for t, s in steps])


def plan_events(ran: Ran) -> list[dict[str, Any]]:
    return [e for e in ran.events if e["category"] == "agent" and "plan" in e["data"]]


def last_shown(ran: Ran) -> str:
    """The last message of the model's last prompt: where the step's status lines are."""
    return ran.model.prompts[-1][-1]["content"]


# The plan.


def test_a_plan_is_journaled_and_shown_to_the_model_after_each_step(calc: Path) -> None:
    first = plan(
        ("read calc.py", "in_progress"), ("fix add()", "pending"), ("run the tests", "pending")
    )
    second = plan(
        ("read calc.py", "done"), ("fix add()", "in_progress"), ("run the tests", "pending")
    )
    script = [
        first,
        call("read_file", path="calc.py"),
        second,
        call("edit_file", path="calc.py", old="a - b", new="a + b"),
        call("finish", summary="fixed"),
    ]
    ran = run_agent(calc, script)

    assert ran.outcome.status == "succeeded"
    assert ran.model.prompts[1][-1]["content"].startswith(
        "plan updated: 0 of 3 done\n[>] read calc.py"
    )
    # Every step after the first plan ends with it, in one line, under the budget line.
    for prompt in ran.model.prompts[1:]:
        budget, shown = prompt[-1]["content"].splitlines()[-2:]
        assert budget.startswith("[budget left: ")
        assert shown.startswith("[plan: ")
    assert last_shown(ran).endswith("[plan: [x] read calc.py | [>] fix add() | [ ] run the tests]")
    events = plan_events(ran)
    assert [(e["step"], e["message"]) for e in events] == [
        (1, "step 1: plan 1/3: read calc.py"),
        (3, "step 3: plan 2/3: fix add()"),
    ]
    assert events[1]["data"] == {
        "plan": [
            {"text": "read calc.py", "status": "done"},
            {"text": "fix add()", "status": "in_progress"},
            {"text": "run the tests", "status": "pending"},
        ],
        "current": 2,
        "done": 1,
        "total": 3,
        "source": "model",
    }


def test_no_plan_no_plan_line(calc: Path) -> None:
    ran = run_agent(calc, [call("read_file", path="calc.py"), call("finish", summary="ok")])
    assert "[plan" not in last_shown(ran)
    assert plan_events(ran) == []


@pytest.mark.parametrize(
    ("steps", "error"),
    [
        ([], "error: a plan needs at least one step"),
        (
            [{"text": "  ", "status": "pending"}],
            "error: step 1 has no text; say what the step does",
        ),
        (
            [{"text": "a", "status": "in_progress"}, {"text": "b", "status": "in_progress"}],
            "error: at most one step may be in_progress, not steps 1, 2",
        ),
        (
            [{"text": "a", "status": "started"}],
            "input should be 'pending', 'in_progress' or 'done'",
        ),
        (
            [{"text": f"step {n}", "status": "pending"} for n in range(21)],
            "at most 20 steps, not 21",
        ),
        (
            [{"text": "x" * 201, "status": "pending"}],
            "step 1 is 201 characters; keep each under 200",
        ),
    ],
)
def test_a_bad_plan_is_refused_and_the_last_one_stays(
    calc: Path, steps: list[dict[str, str]], error: str
) -> None:
    good = plan(("read calc.py", "in_progress"))
    ran = run_agent(calc, [good, call("update_plan", steps=steps), call("finish", summary="ok")])
    refused = ran.model.prompts[2][-1]["content"]
    assert refused.startswith("error: ") and error in refused
    assert refused.endswith("[plan: [>] read calc.py]")
    assert len(plan_events(ran)) == 1


def test_the_plan_outlives_shortened_and_folded_history(calc: Path) -> None:
    (calc / "big.txt").write_text("".join(f"line {n}: {'x' * 60}\n" for n in range(1, 201)))
    made = plan(("read every file", "done"), ("fix add()", "in_progress"), ("finish", "pending"))
    reads = [call("read_file", path="big.txt", start_line=n * 5 + 1) for n in range(12)]
    script = [made, *reads, call("finish", summary="ok")]
    ran = run_agent(calc, script, window=6000, limits=Limits(max_tokens=10**9))

    assert ran.outcome.status == "succeeded"
    final = ran.model.prompts[-1]
    # The update_plan call and its answer were folded into the note with older steps...
    (note,) = [m["content"] for m in final if m["content"].startswith("Earlier steps")]
    assert "- step 1: update_plan: 3 steps, 1 done" in note
    assert not any(m["content"].startswith("plan updated") for m in final)
    # ...and the plan is still the last thing the model sees, whole.
    assert final[-1]["content"].endswith("[plan: [x] read every file | [>] fix add() | [ ] finish]")


def test_guided_mode_journals_its_moves_as_a_plan(calc: Path) -> None:
    ran = run_agent(
        calc,
        [answer(line="    return a - b", new="return a + b")],
        "fix the failing test",
        guided=True,
    )

    assert ran.outcome.status == "succeeded"
    events = plan_events(ran)
    assert [e["message"] for e in events] == [
        "step 1: plan 1/4: run the tests to see what fails",
        "step 2: plan 2/4: find and read the file to fix",
        "step 3: plan 3/4: make the next candidate fix (the model's, or a generated edit of a"
        " suspect line)",
        "step 4: plan 4/4: rerun the tests: keep the fix, or put the file back and try the next",
        "step 4: plan 4/4 done",
    ]
    assert all(e["data"]["source"] == "guided" for e in events)
    assert events[-1]["data"]["done"] == events[-1]["data"]["total"] == 4
    assert events[-1]["data"]["current"] is None


# Metrics.


def test_failed_calls_are_counted_in_the_budget_line_and_the_journal(calc: Path) -> None:
    script = [
        call("read_file", path="calc.py"),
        call("read_file", path="missing.py"),
        call("edit_file", path="calc.py", old="no such text", new="x"),
        call("finish", summary="ok"),
    ]
    ran = run_agent(calc, script, limits=Limits(max_steps=10, max_tokens=50_000, wall_time=600))

    first, second, third = (p[-1]["content"].splitlines()[-1] for p in ran.model.prompts[1:])
    assert first.startswith("[budget left: 9 steps, ") and first.endswith(" s]")
    assert second.startswith("[budget left: 8 steps, ") and second.endswith(" s · 1 failed call]")
    assert third.endswith(" s · 2 failed calls]")

    metrics = [e for e in ran.events if e["category"] == "metric"]
    assert [(e["level"], e["step"]) for e in metrics] == [
        ("DEBUG", 1),
        ("DEBUG", 2),
        ("DEBUG", 3),
        ("INFO", None),
    ]
    step3 = metrics[2]["data"]
    assert (step3["steps"], step3["calls"], step3["failed_calls"], step3["final"]) == (
        3,
        3,
        2,
        False,
    )
    final = metrics[-1]["data"]
    assert final["final"] is True
    assert (final["steps"], final["calls"], final["failed_calls"]) == (4, 4, 2)
    assert {name: (f["calls"], f["failed"]) for name, f in final["tools"].items()} == {
        "read_file": (2, 1),
        "edit_file": (1, 1),
        "finish": (1, 0),
    }
    assert final["tokens"] == ran.outcome.tokens and final["model_calls"] == 4
    assert metrics[-1]["message"].startswith("run metrics: 4 steps, 4 tool calls (2 failed), ")
    assert "time per tool: " in metrics[-1]["message"]


def test_a_run_stopped_by_a_limit_still_journals_its_final_metrics(calc: Path) -> None:
    ran = run_agent(calc, [call("read_file", path="calc.py")] * 3, limits=Limits(max_steps=2))
    assert ran.outcome.error == "step limit reached (2 steps)"
    final = ran.events[-1]
    assert (final["category"], final["data"]["final"], final["data"]["steps"]) == (
        "metric",
        True,
        2,
    )


def test_nexus_show_story_has_the_latest_plan_and_the_metrics(calc: Path) -> None:
    script = [
        plan(("read calc.py", "in_progress"), ("fix add()", "pending")),
        plan(("read calc.py", "done"), ("fix add()", "in_progress")),
        call("finish", summary="ok"),
    ]
    ran = run_agent(calc, script)
    events = [
        {**e, "run": "r", "ts": f"2026-01-01T00:00:{n:02d}.000Z"} for n, e in enumerate(ran.events)
    ]
    story = timeline(events)
    assert "  plan     1/2: read calc.py\n" in story and "  plan     2/2: fix add()\n" in story
    assert "\nPlan (as of step 2):\n  [x] read calc.py\n  [>] fix add()\n" in story
    assert "\nMetrics: 3 steps, 3 tool calls, " in story
    assert "metrics —" not in story  # the per-step figures stay in the journal


# Being stuck.


def test_fingerprints_ignore_timings_but_not_counts() -> None:
    assert fingerprint("1 failed, 1 passed in 0.03s") == fingerprint("1 failed, 1 passed in 1.21s")
    assert fingerprint("exit code 0 (0.1 s)") == fingerprint("exit code 0 (12 ms)")
    assert fingerprint("1 failed, 1 passed in 0.03s") != fingerprint("0 failed, 2 passed in 0.03s")


def test_a_run_that_learns_nothing_is_warned_then_stopped(calc: Path) -> None:
    # The same successful read over and over: never the repeated *failing* call.
    script = [say("Let me look."), *[call("read_file", path="calc.py")] * 20]
    ran = run_agent(calc, script)

    assert ran.outcome.status == "failed"
    assert ran.outcome.error == STUCK
    # Step 1 said nothing, step 2 read the file (new), then 3.. learned nothing.
    warned_at = 2 + WARN_AFTER
    assert len(ran.model.prompts) == 2 + STOP_AFTER
    shown = ran.model.prompts[warned_at][-1]["content"]
    assert f"For {WARN_AFTER} steps no file has changed" in shown and "you seem stuck" in shown
    assert f"After {STOP_AFTER} such steps in a row the run stops." in shown
    warnings = [e for e in ran.events if e["level"] == "WARNING" and e["category"] == "agent"]
    assert [(e["step"], e["data"]) for e in warnings] == [(warned_at, {"idle_steps": WARN_AFTER})]
    assert ran.events[-1]["data"]["idle_steps"] == STOP_AFTER  # the final metrics say why


def test_a_warned_run_that_changes_a_file_goes_on(calc: Path) -> None:
    same = call("read_file", path="calc.py")
    script = [
        same,
        *[same] * WARN_AFTER,  # warned here
        call("write_file", path="notes.md", content="what I know so far\n"),
        *[same] * (STOP_AFTER - 1),  # idle again, but not for long enough
        call("finish", summary="ok"),
    ]
    ran = run_agent(calc, script, limits=Limits(max_steps=40))
    assert ran.outcome.status == "succeeded", ran.outcome.error
    # Warned once for each stretch of idle steps, never stopped.
    warned = [e["step"] for e in ran.events if "you seem stuck" in e["message"]]
    assert warned == [1 + WARN_AFTER, 2 + 2 * WARN_AFTER]


def test_an_ordinary_run_of_reads_edits_and_test_runs_is_not_stopped(calc: Path) -> None:
    check = call("run_command", command="python3 -c 'from calc import add; assert add(2, 3) == 5'")
    script = [
        call("read_file", path="calc.py"),
        call("read_file", path="test_calc.py"),
        call("search", pattern="def add"),
        call("run_tests"),
    ]
    for attempt in range(5):  # edit, check twice (the same failure), read the file again
        old = "def nothing():" + (f"  # {attempt - 1}" if attempt else "")
        new = f"def nothing():  # {attempt}"
        script += [call("edit_file", path="calc.py", old=old, new=new), check, check]
        script.append(call("read_file", path="calc.py"))
    script += [call("edit_file", path="calc.py", old="a - b", new="a + b"), call("run_tests")]
    script.append(call("finish", summary="fixed"))
    ran = run_agent(calc, script, limits=Limits(max_steps=40))

    assert ran.outcome.status == "succeeded", ran.outcome.error
    assert ran.outcome.steps == len(script) == 27
    assert not [e for e in ran.events if "you seem stuck" in e["message"]]
    checks = [e["data"] for e in ran.events if e["data"].get("tool") == "run_command"]
    assert len(checks) == 10 and all(c["details"]["exit_code"] == 1 for c in checks)
    tests = [e["data"]["details"] for e in ran.events if e["data"].get("tool") == "run_tests"]
    assert (tests[-1]["passed"], tests[-1]["failed"]) == (1, 0)


def test_a_command_that_changes_files_is_not_idle_though_it_prints_the_same(calc: Path) -> None:
    # Each run prints nothing new, but its step commit moves the branch.
    append = call("run_command", command="echo more >> log.txt")
    ran = run_agent(calc, [append] * (STOP_AFTER + 2) + [call("finish", summary="ok")])
    assert ran.outcome.status == "succeeded", ran.outcome.error
    assert (calc / "log.txt").read_text() == "more\n" * (STOP_AFTER + 2)

    idle = run_agent(calc, [call("run_command", command="true")] * (STOP_AFTER + 3))
    assert idle.outcome.error == STUCK


def test_the_budget_line_names_the_tool_the_time_went_to() -> None:
    import threading

    from inprocess_model import InProcessModel

    from nexus_ls.agent.budget import Budget
    from nexus_ls.config import Limits

    budget = Budget(Limits(), InProcessModel([]), threading.Event())
    budget.metrics.call("read_file", 40, ok=True)
    assert "most time" not in budget.line()
    budget.metrics.call("run_tests", 9_000, ok=False)
    budget.metrics.call("run_tests", 3_500, ok=True)
    assert budget.line().endswith(" · 1 failed call · most time: run_tests 12 s in 2 calls]")
