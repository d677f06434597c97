"""Looking at a run's net change: its diff, its files, merging it into an editor buffer,
and dropping it. Bringing it into the working tree is `sandbox.accept`."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from nexus_ls.sandbox.repo import Workspace, git_bytes, run_git
from nexus_ls.sandbox.worktree import remove_worktree

GITLINK = "160000"
SYMLINK = "120000"
EXECUTABLE = "100755"


def net_diff(ws: Workspace, base: str, head: str) -> str:
    """The run's whole change as a patch (binary files are named, not dumped)."""
    out = git_bytes(ws.root, "diff", "--no-color", "--no-ext-diff", "--no-textconv", base, head)
    return out.decode("utf-8", "replace")


def changed_paths(ws: Workspace, base: str, head: str) -> list[str]:
    """Paths the run added, changed or deleted (a rename counts as both of its paths)."""
    out = git_bytes(ws.root, "diff", "--name-only", "-z", "--no-renames", base, head)
    return [os.fsdecode(name) for name in out.split(b"\0") if name]


def discard(ws: Workspace, run_id: str, keep: bool = True) -> None:
    """Drop the run's worktree and branch; the journal keeps its diff. `keep` False: the
    worktree is removed, never kept for the next run."""
    remove_worktree(ws, run_id, keep)


def blob_text(ws: Workspace, rev: str, path: str) -> str | None:
    """A file's text at a commit, or None where the commit has no such file."""
    result = run_git(ws.root, "cat-file", "blob", f"{rev}:{path}")
    return result.stdout.decode("utf-8", "surrogateescape") if result.status == 0 else None


def merge_texts(ours: str, base: str, theirs: str) -> str | None:
    """Three-way merge of three texts (an editor buffer against a run's change), or None
    when they conflict. `git merge-file` on temp files, so nothing in the repo is touched."""
    with tempfile.TemporaryDirectory(prefix="nexus-merge-") as tmp:
        names = []
        for name, text in (("ours", ours), ("base", base), ("theirs", theirs)):
            path = Path(tmp) / name
            path.write_bytes(text.encode("utf-8", "surrogateescape"))
            names.append(str(path))
        result = run_git(Path(tmp), "merge-file", "-p", *names)
    if result.status != 0:
        return None
    return result.stdout.decode("utf-8", "surrogateescape")
