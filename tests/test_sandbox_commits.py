"""Step commits: message format, trailers git can parse, identity, no empty commits."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_git import make_repo, run, write

from nexus_ls.sandbox import (
    changed_files,
    commit_step,
    create_worktree,
    format_message,
    open_workspace,
    snapshot,
)


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "proj", {"a.txt": "a\n", "old.txt": "old\n", "keep.txt": "k\n"})
    ws = open_workspace(root)
    return create_worktree(ws, "r1", snapshot(ws))


def test_format_message_full() -> None:
    message = format_message("edit_file", "Fix the off-by-one", "Loop ran once too often.", "r1", 3)
    assert message == (
        "edit_file: Fix the off-by-one\n\n"
        "Loop ran once too often.\n\n"
        "Nexus-Run: r1\nNexus-Step: 3\n"
    )


def test_format_message_without_rationale() -> None:
    assert format_message("write_file", "Add notes", "  \n", "r1", 1) == (
        "write_file: Add notes\n\nNexus-Run: r1\nNexus-Step: 1\n"
    )


def test_format_message_summary_is_one_short_line() -> None:
    message = format_message("run_command", "first line\nsecond line", "why", "r1", 2)
    assert message.splitlines()[0] == "run_command: first line"
    long = format_message("write_file", "x" * 200, "", "r1", 1).splitlines()[0]
    summary = long.removeprefix("write_file: ")
    assert len(summary) <= 72 and summary.endswith("...")


def test_commit_step_message_identity_and_trailers(worktree: Path) -> None:
    base = run(worktree, "rev-parse", "HEAD")
    write(worktree, "a.txt", "changed\n")
    write(worktree, "dir/new.txt", "new\n")
    sha = commit_step(worktree, "write_file", "Change a", "Because.", "r1", 1).sha
    assert sha == run(worktree, "rev-parse", "HEAD")
    assert run(worktree, "rev-parse", f"{sha}^") == base
    assert run(worktree, "log", "-1", "--format=%an <%ae>|%cn <%ce>", sha) == (
        "NEXUS <nexus@localhost>|NEXUS <nexus@localhost>"
    )
    assert run(worktree, "log", "-1", "--format=%B", sha) == (
        "write_file: Change a\n\nBecause.\n\nNexus-Run: r1\nNexus-Step: 1\n"
    )
    trailers = run(worktree, "log", "-1", "--format=%(trailers:only,unfold)", sha)
    assert trailers.splitlines() == ["Nexus-Run: r1", "Nexus-Step: 1"]
    assert run(worktree, "show", "--name-only", "--format=", sha).splitlines() == [
        "a.txt",
        "dir/new.txt",
    ]


def test_commit_step_records_deletions_and_renames(worktree: Path) -> None:
    (worktree / "old.txt").rename(worktree / "renamed.txt")
    (worktree / "keep.txt").unlink()
    sha = commit_step(worktree, "run_command", "mv and rm", "", "r1", 2).sha
    assert sha is not None
    names = run(worktree, "show", "--name-status", "--no-renames", "--format=", sha)
    assert sorted(names.splitlines()) == ["A\trenamed.txt", "D\tkeep.txt", "D\told.txt"]
    assert changed_files(worktree) == []


def test_commit_step_without_changes_is_a_no_op(worktree: Path) -> None:
    head = run(worktree, "rev-parse", "HEAD")
    assert commit_step(worktree, "read_file", "nothing", "", "r1", 1).sha is None
    assert run(worktree, "rev-parse", "HEAD") == head
    write(worktree, "a.txt", "a\n")  # rewritten with identical content
    assert commit_step(worktree, "write_file", "same bytes", "", "r1", 2).sha is None
    assert run(worktree, "rev-parse", "HEAD") == head


def test_changed_files_sees_every_kind_of_change(worktree: Path) -> None:
    assert changed_files(worktree) == []
    write(worktree, "a.txt", "modified\n")
    write(worktree, "deep/dir/new file.txt", "untracked\n")
    write(worktree, "ünï.txt", "non-ascii\n")
    (worktree / "keep.txt").unlink()
    run(worktree, "mv", "old.txt", "moved.txt")
    assert changed_files(worktree) == sorted(
        ["a.txt", "deep/dir/new file.txt", "ünï.txt", "keep.txt", "old.txt", "moved.txt"]
    )
