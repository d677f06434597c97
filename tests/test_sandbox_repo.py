"""Finding the workspace and running git: real repositories in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_git import make_repo, run

from nexus_ls.errors import NexusError
from nexus_ls.sandbox import NEXUS_IDENTITY, git, git_bytes, open_workspace


def test_open_workspace_at_the_top(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    ws = open_workspace(root)
    assert ws.root == root.resolve()
    assert ws.common_dir == (root / ".git").resolve()
    assert ws.state_dir == ws.common_dir / "nexus"
    assert ws.state_dir.is_dir()


def test_open_workspace_from_a_subdirectory_and_a_file(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj", {"src/pkg/mod.py": "x = 1\n"})
    assert open_workspace(root / "src" / "pkg").root == root.resolve()
    assert open_workspace(str(root / "src" / "pkg" / "mod.py")).root == root.resolve()


def test_open_workspace_without_commits(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "empty")
    assert open_workspace(root).root == root.resolve()


def test_linked_worktree_shares_the_common_dir(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    run(root, "worktree", "add", "--quiet", str(tmp_path / "other"), "-b", "other")
    ws = open_workspace(tmp_path / "other")
    assert ws.root == (tmp_path / "other").resolve()
    assert ws.common_dir == (root / ".git").resolve()


def test_non_git_folder_says_how_to_start(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(NexusError) as err:
        open_workspace(plain)
    message = str(err.value)
    assert message.startswith(f"{plain} is not inside a git repository")
    assert "git init" in message and "open a folder inside a repository" in message
    assert not (plain / ".git").exists()


def test_missing_folder_is_a_nexus_error(tmp_path: Path) -> None:
    with pytest.raises(NexusError, match="does not exist"):
        open_workspace(tmp_path / "nowhere")


def test_bare_repository_is_refused(tmp_path: Path) -> None:
    run(tmp_path, "init", "--quiet", "--bare", "bare.git")
    with pytest.raises(NexusError, match="bare"):
        open_workspace(tmp_path / "bare.git")


def test_git_returns_stdout_without_trailing_newline(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    assert git(root, "rev-parse", "HEAD") == run(root, "rev-parse", "HEAD")


def test_git_failure_carries_gits_reason(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    with pytest.raises(NexusError) as err:
        git(root, "rev-parse", "--verify", "no-such-branch")
    assert str(err.value).startswith("git rev-parse failed: fatal:")


def test_git_in_missing_folder_never_runs_elsewhere(tmp_path: Path) -> None:
    with pytest.raises(NexusError, match="does not exist"):
        git(tmp_path / "gone", "status")


def test_git_bytes_keeps_binary_blobs_and_stdin(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj")
    data = bytes(range(256)) + b"\n\n"
    sha = git(root, "hash-object", "-w", "--stdin", stdin=data)
    assert git_bytes(root, "cat-file", "blob", sha) == data


def test_env_merges_over_the_environment(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj")
    tree = git(root, "write-tree")
    sha = git(root, "commit-tree", "-m", "m", tree, env=dict(NEXUS_IDENTITY))
    assert git(root, "log", "-1", "--format=%an <%ae> %cn <%ce>", sha) == (
        "NEXUS <nexus@localhost> NEXUS <nexus@localhost>"
    )
