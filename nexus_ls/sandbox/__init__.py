"""The sandbox: snapshots of the user's state, run worktrees, step commits, safe paths, review.

Everything a run does to files happens in its own worktree on branch `nexus/<run-id>`;
the user's working tree changes only through `accept`. `accept` and `snapshot` share their
modules' names, so they are imported from `sandbox.accept` and `sandbox.snapshot`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nexus_ls.sandbox.accept import AcceptIncomplete, MergeConflict
    from nexus_ls.sandbox.commits import commit_step, format_message
    from nexus_ls.sandbox.paths import PathEscape, relative, resolve_inside
    from nexus_ls.sandbox.repo import (
        NEXUS_IDENTITY,
        Workspace,
        changed_files,
        git,
        git_bytes,
        open_workspace,
    )
    from nexus_ls.sandbox.review import (
        blob_text,
        changed_paths,
        discard,
        merge_texts,
        net_diff,
    )
    from nexus_ls.sandbox.worktree import (
        branch_name,
        create_worktree,
        remove_worktree,
        worktree_path,
    )

# Each name is imported from its module when first used: a command that only finds the
# workspace (`nexus log`) does not pay for worktrees, merges and GitPython.
_HOME = {
    "AcceptIncomplete": "accept",
    "MergeConflict": "accept",
    "NEXUS_IDENTITY": "repo",
    "PathEscape": "paths",
    "Workspace": "repo",
    "blob_text": "review",
    "branch_name": "worktree",
    "changed_files": "repo",
    "changed_paths": "review",
    "commit_step": "commits",
    "create_worktree": "worktree",
    "discard": "review",
    "format_message": "commits",
    "git": "repo",
    "git_bytes": "repo",
    "merge_texts": "review",
    "net_diff": "review",
    "open_workspace": "repo",
    "relative": "paths",
    "remove_worktree": "worktree",
    "resolve_inside": "paths",
    "worktree_path": "worktree",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "NEXUS_IDENTITY",
    "AcceptIncomplete",
    "MergeConflict",
    "PathEscape",
    "Workspace",
    "blob_text",
    "branch_name",
    "changed_files",
    "changed_paths",
    "commit_step",
    "create_worktree",
    "discard",
    "format_message",
    "merge_texts",
    "git",
    "git_bytes",
    "net_diff",
    "open_workspace",
    "relative",
    "remove_worktree",
    "resolve_inside",
    "worktree_path",
]
