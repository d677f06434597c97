"""Run worktrees: made on their own branch from a snapshot, removed without a trace."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers_git import disk_files, make_repo, repo_state, run, tree_files, write

from nexus_ls.errors import NexusError
from nexus_ls.sandbox import (
    branch_name,
    create_worktree,
    open_workspace,
    remove_worktree,
    worktree_path,
)
from nexus_ls.sandbox.snapshot import snapshot


def branches(root: Path) -> list[str]:
    return run(root, "for-each-ref", "--format=%(refname:short)", "refs/heads").splitlines()


def worktree_list(root: Path) -> str:
    return run(root, "worktree", "list", "--porcelain")


def test_names() -> None:
    assert branch_name("20240101-abc") == "nexus/20240101-abc"


def test_create_checks_out_the_base(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj", {"a.txt": "a\n", "sub/b.txt": "b\n"})
    write(root, "a.txt", "dirty\n")
    write(root, "new.txt", "untracked\n")
    ws = open_workspace(root)
    base = snapshot(ws)
    before = repo_state(root)

    path = create_worktree(ws, "r1", base)

    assert path == worktree_path(ws, "r1") == ws.state_dir / "worktrees" / "r1"
    assert disk_files(path) == tree_files(root, base)
    assert disk_files(path)["a.txt"] == b"dirty\n"
    assert run(root, "rev-parse", "nexus/r1") == base
    assert run(path, "symbolic-ref", "HEAD") == "refs/heads/nexus/r1"
    assert str(path) in worktree_list(root)
    # The user's repository gained a branch and a worktree entry, nothing else.
    after = repo_state(root)
    assert (after.index, after.status, after.head, after.files) == (
        before.index,
        before.status,
        before.head,
        before.files,
    )


def test_create_refuses_an_existing_branch(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    ws = open_workspace(root)
    base = snapshot(ws)
    create_worktree(ws, "r1", base)
    with pytest.raises(NexusError, match="branch nexus/r1 already exists"):
        create_worktree(ws, "r1", base)
    run(root, "branch", "nexus/r2")
    with pytest.raises(NexusError, match="nexus/r2 already exists"):
        create_worktree(ws, "r2", base)
    assert not worktree_path(ws, "r2").exists()


def test_run_ids_that_could_climb_out_are_refused(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    ws = open_workspace(root)
    victim = tmp_path / "victim"
    victim.mkdir()
    for bad in ("../../../victim", "a/b", "", ".hidden"):
        with pytest.raises(NexusError, match="run id"):
            create_worktree(ws, bad, "HEAD")
        with pytest.raises(NexusError, match="run id"):
            remove_worktree(ws, bad)
    assert victim.is_dir()


def test_remove_dirty_worktree_and_branch(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    ws = open_workspace(root)
    path = create_worktree(ws, "r1", snapshot(ws))
    write(path, "a.txt", "changed in the run\n")
    write(path, "untracked.txt", "new\n")
    before = repo_state(root)

    remove_worktree(ws, "r1")

    assert not path.exists()
    assert "nexus/r1" not in branches(root)
    assert str(path) not in worktree_list(root)
    assert repo_state(root).files == before.files
    remove_worktree(ws, "r1")  # idempotent
    remove_worktree(ws, "never-created")


def test_remove_after_the_folder_vanished(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    ws = open_workspace(root)
    path = create_worktree(ws, "r1", snapshot(ws))
    shutil.rmtree(path)
    remove_worktree(ws, "r1")
    assert "nexus/r1" not in branches(root)
    assert str(path) not in worktree_list(root)
    # The run id can be used again afterwards.
    assert create_worktree(ws, "r1", "HEAD").is_dir()


def test_remove_a_locked_worktree(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    ws = open_workspace(root)
    path = create_worktree(ws, "r1", snapshot(ws))
    run(root, "worktree", "lock", str(path))
    remove_worktree(ws, "r1")
    assert not path.exists()
    assert "nexus/r1" not in branches(root)
