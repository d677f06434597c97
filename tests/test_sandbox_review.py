"""Accept, conflicts and discard, on real repositories where the user keeps working."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers_git import commit_all, disk_files, make_repo, repo_state, run, write

from nexus_ls.errors import NexusError
from nexus_ls.sandbox import (
    MergeConflict,
    Workspace,
    changed_paths,
    commit_step,
    create_worktree,
    discard,
    net_diff,
    open_workspace,
)
from nexus_ls.sandbox.accept import accept
from nexus_ls.sandbox.snapshot import snapshot

LINES = "".join(f"line {i}\n" for i in range(1, 21))
BLOB = bytes(range(256)) * 8


@dataclass
class Run:
    ws: Workspace
    root: Path
    wt: Path
    base: str

    def step(self, summary: str = "step") -> str:
        sha = commit_step(self.wt, "write_file", summary, "", "r1", 1).sha
        assert sha is not None
        return sha


@pytest.fixture
def started(tmp_path: Path) -> Run:
    root = make_repo(
        tmp_path / "proj",
        {
            "a.txt": LINES,
            "b.txt": "b\n",
            "other.txt": "other\n",
            "gone.txt": "delete me\n",
            "run.sh": "#!/bin/sh\necho hi\n",
            "img.bin": BLOB,
        },
    )
    write(root, "wip.txt", "the user's uncommitted work\n")
    ws = open_workspace(root)
    base = snapshot(ws)
    return Run(ws, root, create_worktree(ws, "r1", base), base)


def edit_line(text: str, number: int, new: str) -> str:
    lines = text.splitlines(keepends=True)
    lines[number - 1] = new + "\n"
    return "".join(lines)


def test_accept_clean_while_the_user_edited_another_file(started: Run) -> None:
    r = started
    write(r.wt, "a.txt", edit_line(LINES, 2, "run's line 2"))
    write(r.wt, "new/dir/added.txt", "added by the run\n")
    (r.wt / "gone.txt").unlink()
    write(r.wt, "img.bin", BLOB[::-1])
    write(r.wt, "new.bin", b"\0\1\2binary\0")
    os.chmod(r.wt / "run.sh", 0o755)
    head = r.step()
    write(r.root, "other.txt", "user edited this meanwhile\n")
    before = repo_state(r.root)

    written = accept(r.ws, r.base, head)

    assert written == ["a.txt", "gone.txt", "img.bin", "new.bin", "new/dir/added.txt", "run.sh"]
    files = disk_files(r.root)
    assert files["a.txt"] == edit_line(LINES, 2, "run's line 2").encode()
    assert files["new/dir/added.txt"] == b"added by the run\n"
    assert "gone.txt" not in files
    assert files["img.bin"] == BLOB[::-1]
    assert files["new.bin"] == b"\0\1\2binary\0"
    assert os.access(r.root / "run.sh", os.X_OK)
    assert files["other.txt"] == b"user edited this meanwhile\n"
    assert files["wip.txt"] == b"the user's uncommitted work\n"
    after = repo_state(r.root)
    assert (after.index, after.index_mtime_ns, after.head, after.refs, after.stash) == (
        before.index,
        before.index_mtime_ns,
        before.head,
        before.refs,
        before.stash,
    )


def test_accept_same_file_non_overlapping(started: Run) -> None:
    r = started
    write(r.wt, "a.txt", edit_line(LINES, 2, "run's line 2"))
    head = r.step()
    write(r.root, "a.txt", edit_line(LINES, 18, "user's line 18"))
    assert accept(r.ws, r.base, head) == ["a.txt"]
    expected = edit_line(edit_line(LINES, 2, "run's line 2"), 18, "user's line 18")
    assert (r.root / "a.txt").read_text() == expected


def test_accept_after_the_user_committed(started: Run) -> None:
    r = started
    write(r.wt, "b.txt", "b from the run\n")
    head = r.step()
    write(r.root, "other.txt", "committed by the user\n")
    user_head = commit_all(r.root, "user work")
    assert accept(r.ws, r.base, head) == ["b.txt"]
    assert (r.root / "b.txt").read_text() == "b from the run\n"
    assert (r.root / "other.txt").read_text() == "committed by the user\n"
    assert run(r.root, "rev-parse", "HEAD") == user_head
    assert run(r.root, "status", "--porcelain", "--", "b.txt") == " M b.txt"


def test_accept_symlink_and_type_change(started: Run) -> None:
    r = started
    os.symlink("b.txt", r.wt / "link")
    (r.wt / "other.txt").unlink()
    write(r.wt, "other.txt/inside.txt", "a folder now\n")
    head = r.step()
    accept(r.ws, r.base, head)
    assert os.readlink(r.root / "link") == "b.txt"
    assert (r.root / "other.txt" / "inside.txt").read_text() == "a folder now\n"


def test_accept_with_nothing_to_bring(started: Run) -> None:
    r = started
    before = repo_state(r.root)
    assert accept(r.ws, r.base, r.base) == []
    assert repo_state(r.root) == before


def test_conflict_names_files_and_changes_nothing(started: Run) -> None:
    r = started
    write(r.wt, "a.txt", edit_line(LINES, 5, "run's line 5"))
    write(r.wt, "b.txt", "run's b\n")
    write(r.wt, "other.txt", "run's other\n")
    head = r.step()
    write(r.root, "a.txt", edit_line(LINES, 5, "user's line 5"))
    write(r.root, "b.txt", "user's b\n")
    run(r.root, "add", "b.txt")
    before = repo_state(r.root)

    with pytest.raises(MergeConflict) as err:
        accept(r.ws, r.base, head)

    assert err.value.files == ["a.txt", "b.txt"]
    assert str(err.value) == (
        "accept refused: these files conflict with your changes: a.txt, b.txt; nothing was changed"
    )
    assert isinstance(err.value, NexusError)
    assert repo_state(r.root) == before


def test_conflict_when_the_user_deleted_what_the_run_changed(started: Run) -> None:
    r = started
    write(r.wt, "b.txt", "run's b\n")
    head = r.step()
    (r.root / "b.txt").unlink()
    before = repo_state(r.root)
    with pytest.raises(MergeConflict) as err:
        accept(r.ws, r.base, head)
    assert err.value.files == ["b.txt"]
    assert repo_state(r.root) == before


def test_ignored_file_in_the_way_is_not_overwritten(started: Run) -> None:
    r = started
    write(r.wt, "notes.txt", "the run's notes\n")
    write(r.wt, "b.txt", "run's b\n")
    head = r.step()
    write(r.root / ".git" / "info", "exclude", "notes.txt\n")
    write(r.root, "notes.txt", "the user's private notes\n")
    before = repo_state(r.root)
    with pytest.raises(NexusError, match="notes.txt exists in your working tree but is ignored"):
        accept(r.ws, r.base, head)
    assert repo_state(r.root) == before


def test_net_diff_and_changed_paths(started: Run) -> None:
    r = started
    write(r.wt, "a.txt", LINES + "appended by the run\n")
    write(r.wt, "new.bin", BLOB)
    (r.wt / "b.txt").rename(r.wt / "b renamed.txt")
    head = r.step()
    diff = net_diff(r.ws, r.base, head)
    assert "diff --git a/a.txt b/a.txt" in diff
    assert "+appended by the run\n" in diff
    assert "Binary files /dev/null and b/new.bin differ" in diff
    assert diff.endswith("\n")
    assert changed_paths(r.ws, r.base, head) == ["a.txt", "b renamed.txt", "b.txt", "new.bin"]
    assert changed_paths(r.ws, r.base, r.base) == []


def test_discard_removes_worktree_and_branch(started: Run) -> None:
    r = started
    write(r.wt, "a.txt", "uncommitted run work\n")
    before = repo_state(r.root)
    discard(r.ws, "r1")
    assert not r.wt.exists()
    assert run(r.root, "branch", "--list", "nexus/*") == ""
    assert repo_state(r.root).files == before.files
    discard(r.ws, "r1")
