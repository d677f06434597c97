"""Three-way merges without a working tree: the merged tree, or the files that conflict.

`git merge-tree --write-tree` merges in the object store only, so a conflict leaves
every file and index as it was: accepting a run into the user's tree and merging a
sub-agent's branch into its parent's worktree both decide first and write after.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from nexus_ls.errors import NexusError
from nexus_ls.sandbox.repo import NEXUS_IDENTITY, git, run_git

_GIT_SIDE = re.compile(r"~[0-9a-f]{7,64}$")


class Conflicts(NexusError):
    """Both sides changed the same lines (or one removed what the other changed)."""

    def __init__(self, files: list[str]) -> None:
        self.files = list(files)
        super().__init__(f"these files conflict: {', '.join(self.files)}")


def merge_trees(cwd: Path, ours: str, theirs: str, env: dict[str, str] | None = None) -> str:
    """The tree of `ours` merged with `theirs`; `Conflicts` naming the files if not clean."""
    result = run_git(
        cwd, "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", ours, theirs,
        env=env,
    )  # fmt: skip
    fields = [os.fsdecode(f) for f in result.stdout.split(b"\0") if f]
    if result.status == 1:
        # A file/folder conflict is reported under git's own name for one side
        # (`out~a6485...`); the user knows the file as `out`.
        names = (_GIT_SIDE.sub("", name) for name in fields[1:])
        raise Conflicts(list(dict.fromkeys(names)))
    if result.status != 0 or not fields:
        raise NexusError(f"git merge-tree failed: {result.stderr.strip()}")
    return fields[0]


@dataclass
class Merged:
    sha: str | None  # the merge commit; None when `theirs` was already merged
    files: list[str] = field(default_factory=list)  # what the merge changed in the worktree


def merge_into_worktree(worktree: Path, env: dict[str, str], theirs: str, message: str) -> Merged:
    """Merge commit `theirs` into the worktree's HEAD as one commit with both parents.

    All or nothing: a conflict raises `Conflicts` before anything is written, and a file
    the worktree changed since HEAD that the merge would overwrite makes git refuse the
    checkout (NexusError) with HEAD, index and files as they were.
    """
    head = git(worktree, "rev-parse", "--verify", "HEAD^{commit}", env=env)
    theirs = git(worktree, "rev-parse", "--verify", f"{theirs}^{{commit}}", env=env)
    if run_git(worktree, "merge-base", "--is-ancestor", theirs, head, env=env).status == 0:
        return Merged(None)
    tree = merge_trees(worktree, head, theirs, env)
    changed = git(worktree, "diff-tree", "-r", "-z", "--name-only", "--no-renames",
                  f"{head}^{{tree}}", tree, env=env)  # fmt: skip
    files = [name for name in changed.split("\0") if name]
    sha = git(
        worktree, "commit-tree", "--no-gpg-sign", "-p", head, "-p", theirs, tree,
        env={**NEXUS_IDENTITY, **env}, stdin=message.encode("utf-8", "replace"),
    )  # fmt: skip
    # A two-tree read-tree checks every path before it writes one: on refusal nothing moved.
    checkout = run_git(worktree, "read-tree", "-m", "-u", head, sha, env=env)
    if checkout.status != 0:
        raise NexusError(
            "the merge would overwrite changes not yet committed in this worktree: "
            f"{checkout.stderr.strip()[:300]}"
        )
    subject = message.split("\n", 1)[0]
    git(worktree, "update-ref", "-m", f"merge: {subject}", "HEAD", sha, head, env=env)
    return Merged(sha, files)
