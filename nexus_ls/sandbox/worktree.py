"""Where a run works: its own branch, checked out in a worktree under the state directory.

The worktree lives in the git common dir, never in the user's tree, so a run cannot show
up in the user's `git status` and removing it never touches the user's files.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from nexus_ls.errors import NexusError
from nexus_ls.sandbox.pool import park, pool_size, take
from nexus_ls.sandbox.repo import Workspace, git, run_git

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def branch_name(run_id: str) -> str:
    """The run's branch; the `nexus/` prefix keeps runs apart from the user's branches."""
    return f"nexus/{run_id}"


def worktree_path(ws: Workspace, run_id: str) -> Path:
    """The run's checkout, inside the state directory."""
    # The id becomes a directory that removal deletes recursively: it must not climb out.
    if not _RUN_ID.fullmatch(run_id):
        raise NexusError(f"run id {run_id!r} is not valid; use letters, digits, '-' and '_' only")
    return ws.state_dir / "worktrees" / run_id


def create_worktree(ws: Workspace, run_id: str, base: str) -> Path:
    """Make branch nexus/<run_id> at `base` and check it out in the run's worktree: a kept
    one moved there when the pool has one (`pool.py`), else a new `git worktree add`."""
    path = worktree_path(ws, run_id)
    branch = branch_name(run_id)
    pool_size()  # a bad setting is said now, before anything is made
    if _branch_exists(ws, branch):
        raise NexusError(
            f"branch {branch} already exists; discard that run first or use a new run id"
        )
    if path.exists():
        raise NexusError(f"{path} already exists; discard run {run_id} first")
    path.parent.mkdir(parents=True, exist_ok=True)
    if take(ws, path, branch, base):
        return path
    if path.exists():
        raise NexusError(f"{path} is left from a kept worktree that could not be used; remove it")
    git(ws.root, "worktree", "add", "--quiet", "-b", branch, str(path), base)
    return path


def release_worktree(ws: Workspace, run_id: str) -> bool:
    """Keep a finished run's worktree for the next run if the pool has room (its branch
    stays); True when it was kept."""
    return park(ws, worktree_path(ws, run_id))


def remove_worktree(ws: Workspace, run_id: str, keep: bool = True) -> None:
    """Remove the run's worktree (even with uncommitted changes) and its branch; the worktree
    goes to the pool instead when it has room and `keep` allows.

    Missing pieces are fine, so discarding a half-made or already-discarded run works.
    """
    path = worktree_path(ws, run_id)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()  # not a worktree NEXUS made: the entry goes, what a link names stays
    elif path.exists() and keep and park(ws, path):
        pass  # kept for the next run, its HEAD detached from the branch deleted below
    elif path.exists():
        # `-f -f` also removes a locked worktree.
        result = run_git(ws.root, "worktree", "remove", "-f", "-f", str(path))
        if result.status != 0 and path.exists():
            shutil.rmtree(path)
    git(ws.root, "worktree", "prune")
    branch = branch_name(run_id)
    if _branch_exists(ws, branch):
        git(ws.root, "branch", "-D", "--quiet", branch)


def _branch_exists(ws: Workspace, branch: str) -> bool:
    return run_git(ws.root, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}").status == 0
