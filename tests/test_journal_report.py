"""Exports, terminal lines and run timelines."""

from __future__ import annotations

import json

import pytest

from nexus_ls.journal import export, format_line, make_event, timeline

DAY = "2024-05-01"
DIFF = "--- a/calc.py\n+++ b/calc.py\n@@ -1 +1 @@\n-return a - b\n+return a + b\n"


def run_events() -> list[dict]:
    """One run as the agent and supervisor would journal it."""
    run = "20240501-abc"
    read = {
        "tool": "read_file",
        "arguments": {"path": "calc.py", "reason": "see the bug"},
        "result": "\n".join(f"line {n}" for n in range(1, 31)),
        "ok": True,
        "duration_ms": 3,
    }
    tests = {"command": "pytest -q", "passed": 4, "failed": 0, "exit_code": 0, "output": "4 passed"}
    events = [
        ("run", None, "run started", {"task": "fix add()", "branch": f"nexus/{run}", "base": "f0"}),
        ("model", 1, "model replied", {"text": "Let me read calc.py first.", "prompt_tokens": 100}),
        ("tool", 1, "read_file calc.py", read),
        ("model", 2, "model replied", {"text": "add() subtracts; fix it.", "completion_tokens": 7}),
        ("edit", 2, "edit calc.py", {"tool": "edit_file", "path": "calc.py", "diff": DIFF}),
        (
            "edit",
            2,
            "commit",
            {"commit": "1234567890abcd", "files": ["calc.py"], "tool": "edit_file"},
        ),
        ("test", 3, "tests passed", tests),
        ("command", 3, "ls", {"command": "ls", "exit_code": 0, "output": "calc.py"}),
        ("error", 3, "tool failed", {"cause": "no such file: nope.py"}),
        ("run", None, "run finished", {"status": "succeeded", "summary": "add() now adds"}),
    ]
    return [
        make_event(
            "INFO",
            category,
            message,
            run=run,
            step=step,
            data=data,
            ts=f"2024-05-01T12:00:{n:02d}Z",
        )
        for n, (category, step, message, data) in enumerate(events)
    ]


def test_jsonl_export_round_trips() -> None:
    events = run_events()
    text = export(events, "jsonl")
    assert [json.loads(row) for row in text.splitlines()] == events


def test_markdown_export_lists_every_message_and_escapes_pipes() -> None:
    events = [*run_events(), make_event("INFO", "command", "a | b")]
    text = export(events, "md")
    assert text.startswith("# NEXUS journal")
    for event in events[:-1]:
        assert event["message"] in text
    assert "a \\| b" in text
    assert "11 events" in text


def test_html_export_is_a_page_with_the_messages_and_escapes_markup() -> None:
    hostile = make_event(
        "WARNING", "tool", "<script>alert(1)</script>", data={"x": "</pre><script>"}
    )
    text = export([*run_events(), hostile], "html")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    for event in run_events():
        assert event["message"] in text
    assert "<table>" in text


def test_export_refuses_unknown_formats_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="jsonl, md, html"):
        export([], "pdf")


def test_export_of_nothing() -> None:
    assert export([], "jsonl") == ""
    assert "No events." in export([], "md")


def test_format_line() -> None:
    event = make_event("WARNING", "tool", "did it", run="r1", step=4, ts="2024-05-01T08:09:10Z")
    assert format_line(event) == "08:09:10 WARNING tool    [r1/4] did it"
    plain = make_event("INFO", "metric", "tokens", ts="2024-05-01T08:09:10Z")
    assert format_line(plain) == "08:09:10 INFO    metric  tokens"
    run_only = make_event("ERROR", "run", "failed", run="r2", ts="2024-05-01T08:09:10Z")
    assert format_line(run_only) == "08:09:10 ERROR   run     [r2] failed"


def test_timeline_tells_the_run_step_by_step() -> None:
    text = timeline(run_events())
    assert text.startswith("Run 20240501-abc: fix add()")
    assert "branch   nexus/20240501-abc from f0" in text
    assert text.index("Step 1") < text.index("Step 2") < text.index("Step 3")
    assert "thought  Let me read calc.py first." in text
    assert 'tool     read_file(path="calc.py")' in text
    assert "reason   see the bug" in text
    assert "result   ok, 3 ms" in text
    assert "| line 8" in text and "| line 9\n" not in text and "… 22 more lines" in text
    assert "edit     calc.py\n" in text and "commit   1234567890ab  calc.py" in text
    assert "| +return a + b" in text
    assert "tests    $ pytest -q" in text and "4 passed, 0 failed, exit 0" in text
    assert "command  $ ls" in text
    assert "error    tool failed" in text and "no such file: nope.py" in text
    assert "status   succeeded: add() now adds" in text
    assert "Tokens: 100 prompt, 7 completion" in text


def test_timeline_separates_runs_and_handles_no_events() -> None:
    other = make_event("INFO", "tool", "x", run="other", step=1, data={"tool": "search"})
    text = timeline([*run_events(), other])
    assert "Run 20240501-abc" in text and "Run other" in text
    assert timeline([]) == "No events.\n"


ANSWER = "\n".join(
    ["Edge cases not handled:", ""]
    + [f"- case {n}: {'negative ' * (n % 5)}input {n}" for n in range(150)]
    + ["", "a line longer than the timeline clips: " + "y" * 300, "\ttabbed"]
)


def answer_events(ended: bool = True, guided: bool = False) -> list[dict]:
    """A run whose agent finished with ANSWER, journaled as the loop does: the message one
    line (cut at 2,000 characters), the whole answer in data."""
    run = "20240501-ans"
    said = "the model says: done" if guided else ANSWER
    finish = make_event(
        "INFO", "agent", f"step 1: finish — {said}", run=run, step=1,
        data={"summary": "done" if guided else ANSWER, "success": True},
        ts="2024-05-01T12:00:01Z",
    )  # fmt: skip
    events = [finish]
    if ended:
        outcome = {"status": "succeeded", "summary": said}
        events.append(
            make_event("INFO", "run", "run succeeded", run=run, data=outcome, ts=f"{DAY}T12:00:02Z")
        )
    return events


def gutter_lines(text: str, head: str) -> list[str]:
    lines = text.splitlines()
    (start,) = [n for n, line in enumerate(lines) if line.startswith(head)]
    body = [lines[start][len(head) :]]
    body += [
        line[len(" " * 13 + "| ") :] for line in lines[start + 1 : start + len(ANSWER.splitlines())]
    ]
    return body


def test_the_outcome_shows_the_final_answer_whole_and_the_finish_step_one_line() -> None:
    events = answer_events()
    assert len(events[0]["message"]) == 2000 and "\n" not in events[0]["message"]
    text = timeline(events)
    assert gutter_lines(text, "  status   succeeded: ") == ANSWER.splitlines()
    (finish,) = [line for line in text.splitlines() if "finish —" in line]
    assert finish.startswith("  agent    step 1: finish — Edge cases not handled: - case 0")
    assert finish.endswith("…") and len(finish) == 2 + 9 + 160
    assert text.count("- case 149: ") == 1


def test_a_run_without_an_outcome_shows_the_answer_at_its_finish_step() -> None:
    text = timeline(answer_events(ended=False))
    assert gutter_lines(text, "  agent    step 1: finish — ") == ANSWER.splitlines()


def test_a_guided_finish_keeps_the_harness_summary() -> None:
    # Guided runs journal the model's own words in data; the message is the harness's.
    text = timeline(answer_events(ended=False, guided=True))
    assert "  agent    step 1: finish — the model says: done\n" in text
    text = timeline(answer_events(guided=True))
    assert "  status   succeeded: the model says: done\n" in text


def test_a_one_line_outcome_is_as_before() -> None:
    text = timeline(run_events())
    assert "  status   succeeded: add() now adds\n" in text
