"""Reviewing a run at the terminal through the real `nexus`: the final answer whole in
`nexus show`, and `nexus diff` saying so when a run changed nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_repo, nexus, sh
from scripted_model import call

CALC = "def add(a, b):\n    return a - b\n"
FIXED = CALC.replace("a - b", "a + b")
GUTTER = " " * 13 + "| "  # where `nexus show` puts the lines of a block after its first


def long_answer() -> str:
    """A review's answer as a model writes one: headed, bulleted, blank lines, a line longer
    than any the timeline clips, a code block; over 5,000 characters."""
    lines = ["Review of calc.py: 3 bugs, and these edge cases are not handled:", ""]
    lines += [f"- edge case {n}: add({n}, -{n}) with a{'n' * (n % 7)} operand" for n in range(120)]
    lines += [
        "",
        "Longest note: " + "the sign is flipped " * 20,
        "",
        "```python",
        "add(1, 2)",
        "```",
    ]
    answer = "\n".join(lines)
    assert len(answer) > 5000 and len(lines) > 100
    return answer


def shown_after(text: str, head: str, count: int) -> str:
    """The `count` lines of a block whose first line follows `head`, gutters removed."""
    lines = text.splitlines()
    (first,) = [n for n, line in enumerate(lines) if line.startswith(head)]
    body = [lines[first][len(head) :]]
    for line in lines[first + 1 : first + count]:
        assert line.startswith(GUTTER.rstrip()), line
        body.append(line[len(GUTTER) :])
    return "\n".join(body)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "proj", {"calc.py": CALC})


def test_show_keeps_a_long_final_answer_whole_with_its_line_breaks(repo: Path, model) -> None:
    answer = long_answer()
    server = model([call("read_file", "I read it first.", path="calc.py"),
                    call("finish", "Done reviewing.", summary=answer)])  # fmt: skip

    ran = nexus(repo, "run", "review calc.py", "--base-url", server.url)
    assert ran.code == 0, ran.stderr
    assert ran.stdout.startswith(f"succeeded: {answer}\n")  # the run's own outcome, whole

    run_id = nexus(repo, "runs", "--json").json()[0]["id"]
    shown = nexus(repo, "show", run_id)
    assert shown.code == 0, shown.stderr
    count = len(answer.splitlines())
    assert shown_after(shown.stdout, "  status   succeeded: ", count) == answer
    # The finish step stays one line; the answer is told once, with the outcome.
    (finish,) = [line for line in shown.stdout.splitlines() if ": finish — " in line]
    assert finish.startswith("  agent    step 2: finish — Review of calc.py: 3 bugs")
    assert len(finish) <= 2 + 9 + 160
    assert shown.stdout.count("- edge case 119: ") == 1

    data = nexus(repo, "show", run_id, "--json").json()
    assert data["run"]["summary"] == answer
    (event,) = [e for e in data["events"] if e["category"] == "agent" and "finish" in e["message"]]
    assert event["data"]["summary"] == answer  # the message is one line; the data is whole
    assert "\n" not in event["message"]
    (ended,) = [e for e in data["events"] if e["message"].startswith("run succeeded")]
    assert ended["data"]["summary"] == answer


def test_diff_of_a_run_that_changed_nothing_says_so(repo: Path, model) -> None:
    server = model([call("finish", summary="nothing to change")])
    out = nexus(repo, "run", "look only", "--json", "--base-url", server.url).json()
    run_id, base = out["run_id"], out["base"]
    assert out["head"] == base

    diff = nexus(repo, "diff", run_id[:15])

    assert diff.code == 0, diff.stderr
    assert diff.stdout == (
        f"run {run_id} changed nothing (branch nexus/{run_id} is at its base {base[:12]})\n"
    )
    assert diff.stderr == ""

    assert nexus(repo, "discard", run_id).code == 0
    gone = nexus(repo, "diff", run_id)
    assert gone.code == 0
    assert gone.stdout == (
        f"run {run_id} changed nothing "
        f"(branch nexus/{run_id}, now discarded, was at its base {base[:12]})\n"
    )


def test_diff_of_a_run_whose_commits_cancel_out_says_so(repo: Path, model) -> None:
    server = model([
        call("write_file", "Flip it.", path="calc.py", content=FIXED),
        call("write_file", "Flip it back.", path="calc.py", content=CALC),
        call("finish", summary="back where it was"),
    ])  # fmt: skip
    out = nexus(repo, "run", "flip twice", "--json", "--base-url", server.url).json()
    run_id, base, head = out["run_id"], out["base"], out["head"]
    assert head != base and sh(repo, "git", "diff", base, head) == ""

    diff = nexus(repo, "diff", run_id)

    assert diff.code == 0, diff.stderr
    assert diff.stdout == (
        f"run {run_id} changed nothing (the commits on branch nexus/{run_id} end at "
        f"{head[:12]}, the same files as its base {base[:12]})\n"
    )


def test_diff_of_a_change_is_still_the_patch_byte_for_byte(repo: Path, model) -> None:
    server = model([call("write_file", path="calc.py", content=FIXED),
                    call("finish", summary="fixed")])  # fmt: skip
    out = nexus(repo, "run", "fix", "--json", "--base-url", server.url).json()

    diff = nexus(repo, "diff", out["run_id"])

    assert diff.stdout == sh(repo, "git", "diff", "--no-color", out["base"], out["head"])
    assert "changed nothing" not in diff.stdout
