"""Putting a failed try back whole: every path it changed (its own edit, and whatever its
check wrote, such as a program's output file) is restored to what the commit before the
try held, or removed if that commit did not have it.

The try's steps are step commits, so the worktree's HEAD before the try is the mark; git
says what differs from it, committed or not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nexus_ls.sandbox.repo import git, git_bytes


@dataclass
class Changes:
    """What to do to get back to the mark: files to write back, files to remove."""

    restore: dict[str, bytes] = field(default_factory=dict)
    remove: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not self.restore and not self.remove


def mark(root: Path, env: Mapping[str, str] | None) -> str:
    """The commit the worktree is at: what a try is put back to."""
    return git(root, "rev-parse", "HEAD", env=dict(env) if env else None)


def changes_since(root: Path, env: Mapping[str, str] | None, at: str) -> Changes:
    """Every path that differs from commit `at`: tracked changes (committed since or not)
    and new files git does not ignore."""
    genv = dict(env) if env else None
    fields = git_bytes(root, "diff", "--name-status", "--no-renames", "-z", at, "--", env=genv)
    words = fields.split(b"\0")
    changes = Changes()
    for status, raw in zip(words[0::2], words[1::2], strict=False):
        path = raw.decode("utf-8", "surrogateescape")
        if status.startswith(b"A"):
            changes.remove.append(path)
        elif path:
            changes.restore[path] = git_bytes(root, "show", f"{at}:{path}", env=genv)
    others = git_bytes(root, "ls-files", "--others", "--exclude-standard", "-z", env=genv)
    for raw in others.split(b"\0"):
        path = raw.decode("utf-8", "surrogateescape")
        if path and path not in changes.remove:
            changes.remove.append(path)
    return changes
