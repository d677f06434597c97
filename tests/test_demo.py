"""`nexus demo`: the example project, a real run on it, and what the user is shown."""

from __future__ import annotations

from pathlib import Path

from conftest import nexus, sh
from scripted_model import call


def test_demo_runs_on_a_fresh_copy_and_shows_branch_diff_and_journal(tmp_path: Path, model) -> None:
    server = model(
        [
            call("run_tests", "See what fails."),
            call(
                "edit_file",
                "add subtracts.",
                path="calc.py",
                old="return a - b",
                new="return a + b",
            ),
            call("run_tests", "Check."),
            call("finish", summary="fixed add"),
        ]
    )
    target = tmp_path / "demo"
    result = nexus(tmp_path, "demo", "--dir", str(target), "--base-url", server.url)

    assert result.code == 0, result.stderr
    assert "fix the failing test" in server.requests[0]["messages"][1]["content"]
    assert sh(target, "git", "status", "--porcelain") == ""  # the copy is committed, untouched
    assert "return a - b" in (target / "calc.py").read_text()
    branch = sh(target, "git", "branch", "--list", "--format=%(refname:short)", "nexus/*").strip()
    assert branch.startswith("nexus/")
    assert branch in result.stdout
    assert "+    return a + b" in result.stdout  # the diff
    assert "Step 2" in result.stdout and "add subtracts." in result.stdout  # the timeline


def test_demo_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("keep me\n")
    result = nexus(tmp_path, "demo", "--dir", str(tmp_path / "busy"), "--base-url", "http://x/v1")
    assert result.code == 2 and "not empty" in result.stderr
    assert (tmp_path / "busy" / "mine.txt").read_text() == "keep me\n"
