"""A commit of the user's current state, made without touching anything of theirs.

Runs start from what the user sees, not from HEAD: uncommitted and untracked work is
part of the base. Everything goes through a throwaway index (`GIT_INDEX_FILE`), so the
user's index, working tree, HEAD, branches and stash stay exactly as they were.

Untracked files that look like secrets (`.env`, keys) are left out: once in a commit
they would reach the run's branch, its diffs in the journal, and the model. They are
never even hashed, so no copy lands in the object store either.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nexus_ls.errors import NexusError
from nexus_ls.sandbox.repo import (
    NEXUS_IDENTITY,
    Workspace,
    changed_files,
    git,
    git_bytes,
    head_commit,
    stage_paths,
)

DEFAULT_MESSAGE = "nexus: snapshot of the working tree"


@dataclass
class Snapshot:
    sha: str
    left_out: list[str] = field(default_factory=list)  # untracked files that look sensitive


def snapshot(ws: Workspace, parent: str | None = None, message: str = DEFAULT_MESSAGE) -> str:
    """Commit HEAD plus every uncommitted and untracked-not-ignored change; return its sha.

    `parent` None means HEAD (no parent in a repository without commits); an explicit
    commit is used instead, which lets accept place the user's state on top of a run's base.
    """
    return take_snapshot(ws, parent, message).sha


def take_snapshot(
    ws: Workspace,
    parent: str | None = None,
    message: str = DEFAULT_MESSAGE,
    sensitive: Sequence[str] = (),
) -> Snapshot:
    """As `snapshot`, leaving out untracked files whose name (or path) matches `sensitive`
    globs; says which."""
    if parent is None:
        head = head_commit(ws.root)
        parents = [head] if head else []
    else:
        parents = [git(ws.root, "rev-parse", "--verify", "--quiet", f"{parent}^{{commit}}")]
    tree, left_out = _write_tree(ws, sensitive)
    args = ["commit-tree", "--no-gpg-sign"]
    for sha in parents:
        args += ["-p", sha]
    args += ["-m", message, tree]
    return Snapshot(git(ws.root, *args, env=dict(NEXUS_IDENTITY)), left_out)


def looks_sensitive(path: str, patterns: Sequence[str]) -> bool:
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(path, p) for p in patterns)


def _write_tree(ws: Workspace, sensitive: Sequence[str] = ()) -> tuple[str, list[str]]:
    """Stage the whole working tree into a private index and write it as a tree."""
    user_index = ws.root / git(ws.root, "rev-parse", "--git-path", "index")
    with tempfile.TemporaryDirectory(dir=ws.state_dir, prefix="snapshot-") as tmp:
        index = Path(tmp) / "index"
        env = {"GIT_INDEX_FILE": str(index)}
        left_out: list[str] = []
        if user_index.is_file():
            # Starting from the user's index lets git reuse its stat cache: only changed
            # files are hashed again.
            shutil.copyfile(user_index, index)
            try:
                left_out = _add_all(ws, env, sensitive)
            except NexusError:
                # A copy may be unreadable on its own (a split index, say); start empty.
                index.unlink()
                left_out = _add_all(ws, env, sensitive)
        else:
            left_out = _add_all(ws, env, sensitive)
        return git(ws.root, "write-tree", env=env), left_out


def _add_all(ws: Workspace, env: dict[str, str], sensitive: Sequence[str]) -> list[str]:
    """`git add -A` of what changed, but for untracked files matching `sensitive`;
    returns those."""
    left_out: list[str] = []
    if sensitive:
        listing = git_bytes(ws.root, "ls-files", "-z", "--others", "--exclude-standard", env=env)
        untracked = [os.fsdecode(p) for p in listing.split(b"\0") if p]
        left_out = sorted(p for p in untracked if looks_sensitive(p, sensitive))
    changed = [path for path in changed_files(ws.root, env) if path not in left_out]
    stage_paths(ws.root, changed, env)
    return left_out
