"""A commit of the user's current state, made without touching anything of theirs.

Runs start from what the user sees, not from HEAD: uncommitted and untracked work is
part of the base. Everything goes through a throwaway index (`GIT_INDEX_FILE`), so the
user's index, working tree, HEAD, branches and stash stay exactly as they were.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from nexus_ls.errors import NexusError
from nexus_ls.sandbox.repo import NEXUS_IDENTITY, Workspace, git, head_commit

DEFAULT_MESSAGE = "nexus: snapshot of the working tree"


def snapshot(ws: Workspace, parent: str | None = None, message: str = DEFAULT_MESSAGE) -> str:
    """Commit HEAD plus every uncommitted and untracked-not-ignored change; return its sha.

    `parent` None means HEAD (no parent in a repository without commits); an explicit
    commit is used instead, which lets accept place the user's state on top of a run's base.
    """
    if parent is None:
        head = head_commit(ws.root)
        parents = [head] if head else []
    else:
        parents = [git(ws.root, "rev-parse", "--verify", "--quiet", f"{parent}^{{commit}}")]
    tree = _write_tree(ws)
    args = ["commit-tree", "--no-gpg-sign"]
    for sha in parents:
        args += ["-p", sha]
    args += ["-m", message, tree]
    return git(ws.root, *args, env=dict(NEXUS_IDENTITY))


def _write_tree(ws: Workspace) -> str:
    """Stage the whole working tree into a private index and write it as a tree."""
    user_index = ws.root / git(ws.root, "rev-parse", "--git-path", "index")
    with tempfile.TemporaryDirectory(dir=ws.state_dir, prefix="snapshot-") as tmp:
        index = Path(tmp) / "index"
        env = {"GIT_INDEX_FILE": str(index)}
        if user_index.is_file():
            # Starting from the user's index lets git reuse its stat cache: only changed
            # files are hashed again.
            shutil.copyfile(user_index, index)
            try:
                git(ws.root, "add", "-A", env=env)
            except NexusError:
                # A copy may be unreadable on its own (a split index, say); start empty.
                index.unlink()
                git(ws.root, "add", "-A", env=env)
        else:
            git(ws.root, "add", "-A", env=env)
        return git(ws.root, "write-tree", env=env)
