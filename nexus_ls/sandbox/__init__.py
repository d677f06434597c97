"""The sandbox: snapshots of the user's state, run worktrees, step commits, safe paths, review.

Everything a run does to files happens in its own worktree on branch `nexus/<run-id>`;
the user's working tree changes only through `accept`.
"""

from nexus_ls.sandbox.accept import AcceptIncomplete, MergeConflict, accept
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
from nexus_ls.sandbox.snapshot import snapshot
from nexus_ls.sandbox.worktree import (
    branch_name,
    create_worktree,
    remove_worktree,
    worktree_path,
)

__all__ = [
    "NEXUS_IDENTITY",
    "AcceptIncomplete",
    "MergeConflict",
    "PathEscape",
    "Workspace",
    "accept",
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
    "snapshot",
    "worktree_path",
]
