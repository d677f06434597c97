"""The agent loop in-process: steps per turn, the budget it shows, commits, bounded prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from agent_harness import run_agent
from conftest import make_repo, sh
from scripted_model import call, raw_call, say

from nexus_ls.config import Limits

FILE = "".join(f"line {n}: {'x' * 60}\n" for n in range(1, 201))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "proj", {"hello.py": "print('hello')\n", "big.txt": FILE})


def calls(*replies: tuple[str, dict]) -> dict:
    return {"content": "", "calls": [(name, json.dumps(args)) for name, args in replies]}


def test_one_turn_of_parallel_calls_is_one_step(repo: Path) -> None:
    reads = calls(*(("read_file", {"path": "hello.py"}),) * 5)
    ran = run_agent(repo, [reads, call("finish", summary="read it five times")])
    assert ran.outcome.status == "succeeded"
    assert ran.outcome.steps == 2
    tool_events = [e for e in ran.events if e["data"].get("tool") == "read_file"]
    assert [e["step"] for e in tool_events] == [1] * 5
    assert [e["data"]["call"] for e in tool_events] == [1, 2, 3, 4, 5]


def test_the_budget_is_shown_every_turn(repo: Path) -> None:
    limits = Limits(max_steps=10, max_tokens=50_000, wall_time=600)
    script = [call("read_file", path="hello.py"), say("thinking"), call("finish", summary="ok")]
    ran = run_agent(repo, script, limits=limits)
    first, second, third = ran.model.prompts
    assert "[budget left: 10 steps, 50,000 tokens," in first[1]["content"]
    assert second[-1]["role"] == "tool"
    assert "[budget left: 9 steps, " in second[-1]["content"].splitlines()[-1]
    assert "[budget left: 8 steps, " in third[-1]["content"]


def test_the_step_limit_counts_turns(repo: Path) -> None:
    reads = calls(("read_file", {"path": "hello.py"}), ("list_files", {}))
    ran = run_agent(repo, [reads, reads, reads], limits=Limits(max_steps=2))
    assert ran.outcome.status == "failed"
    assert ran.outcome.error == "step limit reached (2 steps)"
    assert len(ran.model.prompts) == 2


def test_a_step_commit_says_what_changed(repo: Path) -> None:
    edit = {"content": "Greet the world instead. Then check it.", "calls": [
        ("edit_file", json.dumps({"path": "hello.py", "old": "hello", "new": "world"})),
        ("write_file", json.dumps({"path": "notes.txt", "content": "done\n"})),
    ]}  # fmt: skip
    ran = run_agent(repo, [edit, call("finish", summary="greeted")])
    assert ran.outcome.status == "succeeded"
    subject = sh(repo, "git", "log", "-1", "--format=%s").strip()
    body = sh(repo, "git", "log", "-1", "--format=%b")
    assert subject == "Greet the world instead"
    assert "- edit hello.py: lines 1-1" in body and "- create notes.txt" in body
    assert "Nexus-Step: 1" in body
    assert sh(repo, "git", "rev-list", "--count", "HEAD").strip() == "2"  # one commit, one step


def test_a_reason_names_the_commit_and_without_words_the_tool_summary_does(repo: Path) -> None:
    script = [
        call("edit_file", path="hello.py", old="hello", new="hi", reason="Shorter greeting"),
        call("write_file", path="a.txt", content="a\n"),
        call("finish", summary="ok"),
    ]
    run_agent(repo, script)
    subjects = sh(repo, "git", "log", "-2", "--format=%s").splitlines()
    assert subjects == ["create a.txt", "Shorter greeting"]


def test_unreadable_finish_is_not_success_and_the_model_may_retry(repo: Path) -> None:
    script = [raw_call("finish", '{"summary": '), call("finish", summary="really done")]
    ran = run_agent(repo, script)
    assert ran.outcome.status == "succeeded" and ran.outcome.summary == "really done"
    assert "not valid JSON" in ran.model.prompts[1][-1]["content"]


def test_the_final_answer_is_kept_whole(repo: Path) -> None:
    answer = "\n".join(f"- edge case {n}: {'y' * 80}" for n in range(60))
    ran = run_agent(repo, [call("finish", summary=answer)])
    assert ran.outcome.summary == answer


def test_starting_context_comes_before_the_task(repo: Path) -> None:
    ran = run_agent(repo, [call("finish", summary="ok")], starting="HEAD is the user's commit")
    task = ran.model.prompts[0][1]["content"]
    assert task.index("About the project:\nHEAD is the user's commit") < task.index("Task: do")


def test_cut_output_can_be_read_on(repo: Path) -> None:
    command = "python3 -c \"[print('row', n) for n in range(3000)]\""
    script = [
        call("run_command", command=command),
        lambda shown: call("read_output", step=1, start_line=1500, end_line=1502),
        call("finish", summary="read"),
    ]
    ran = run_agent(repo, script, output_limit=4000)
    cut = ran.model.prompts[1][-1]["content"]
    assert "cut" in cut and 'read them with read_output {"step": 1, "start_line": ' in cut
    assert "row 1500" not in cut
    more = ran.model.prompts[2][-1]["content"]
    assert "\trow 1498" in more and "[lines 1500-1502 of 3002" in more


def test_the_prompt_stays_bounded_over_fifty_steps(repo: Path) -> None:
    # Each read starts a line further on: reading one file fifty times over is being stuck.
    reads = [call("read_file", path="big.txt", start_line=n) for n in range(1, 51)]
    ran = run_agent(repo, [*reads, call("finish", summary="ok")],
                    limits=Limits(max_steps=60, max_tokens=10**9))  # fmt: skip
    assert ran.outcome.status == "succeeded"

    def size(prompt: list[dict]) -> int:
        return sum(len(m["content"]) for m in prompt)

    assert size(ran.model.prompts[49]) / size(ran.model.prompts[4]) <= 3
    old = ran.model.prompts[49][3]["content"]
    assert old.startswith("big.txt (") and 'read_output {"step": 1}' in old
    assert any("shortened" in m for m in ran.messages("agent"))


def test_near_the_context_window_earlier_turns_become_a_note(repo: Path) -> None:
    script = [call("read_file", path="big.txt") for _ in range(12)] + [call("finish", summary="ok")]
    ran = run_agent(repo, script, window=6000, limits=Limits(max_tokens=10**9))
    assert ran.outcome.status == "succeeded"
    notes = [m for m in ran.model.prompts[-1] if m["content"].startswith("Earlier steps")]
    assert len(notes) == 1 and "- step 1: read_file: big.txt (" in notes[0]["content"]
    assert any(m.startswith("summarised ") for m in ran.messages("agent"))


def test_three_identical_failures_warn_and_five_stop(repo: Path) -> None:
    bad = call("read_file", path="missing.py")
    ran = run_agent(repo, [bad] * 6)
    assert ran.outcome.status == "failed"
    assert ran.outcome.error == "stopped: the same failing read_file call 5 times in a row"
    assert "same failing call 3 times" in ran.model.prompts[3][-1]["content"]


def test_a_run_stopped_mid_turn_still_commits_what_the_turn_changed(repo: Path) -> None:
    turn = calls(
        ("edit_file", {"path": "hello.py", "old": "hello", "new": "world"}),
        *(("read_file", {"path": "missing.py"}),) * 5,
    )
    ran = run_agent(repo, [turn])
    assert ran.outcome.error == "stopped: the same failing read_file call 5 times in a row"
    assert sh(repo, "git", "show", "HEAD:hello.py").strip() == "print('world')"
    assert sh(repo, "git", "status", "--porcelain").strip() == ""


def test_one_answer_runs_at_most_32_calls(repo: Path) -> None:
    many = calls(*(("read_file", {"path": "hello.py"}),) * 40)
    ran = run_agent(repo, [many, call("finish", summary="ok")])
    assert ran.outcome.status == "succeeded" and ran.outcome.steps == 2
    answers = [m for m in ran.model.prompts[1] if m["role"] == "tool"]
    assert len(answers) == 40  # every call is answered
    assert sum("\tprint('hello')" in m["content"] for m in answers) == 32
    assert answers[-1]["content"].startswith("error: not run: at most 32 tool calls run per step")
