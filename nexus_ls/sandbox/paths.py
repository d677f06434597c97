"""Keeping a tool's paths inside the run's worktree.

Models write paths; some are wrong and a few are hostile. Every path a tool touches is
resolved here first, and the refusals are worded so the model can correct itself.
"""

from __future__ import annotations

import os
from pathlib import Path

HINT = "use a path relative to the project root"


class PathEscape(ValueError):
    """A path that would leave the worktree or reach into git's metadata."""


def resolve_inside(root: Path, path: str) -> Path:
    """The real (symlink-free) absolute path of `path` inside `root`, or PathEscape.

    `''` and `'.'` mean the root. Refused: absolute paths, `..` that climbs out, symlinks
    anywhere along the way that lead out (also dangling ones and the final component),
    and anything inside `.git`.
    """
    if "\0" in path:
        raise PathEscape(f"path {path!r} contains a NUL byte; {HINT}")
    if os.path.isabs(path):
        raise PathEscape(f"path '{path}' is absolute; {HINT}")
    real_root = os.path.realpath(root)
    lexical = os.path.normpath(os.path.join(real_root, path))
    if not _within(real_root, lexical):
        raise PathEscape(f"path '{path}' is outside the worktree; {HINT}")
    # realpath follows every symlink it meets, dangling ones included.
    real = os.path.realpath(lexical)
    if not _within(real_root, real):
        raise PathEscape(f"path '{path}' leads through a symlink to outside the worktree; {HINT}")
    for candidate in (lexical, real):
        parts = Path(os.path.relpath(candidate, real_root)).parts
        if any(part.lower() == ".git" for part in parts):
            raise PathEscape(
                f"path '{path}' is inside .git, which holds git's own data; "
                "work on the project's files instead"
            )
    return Path(real)


def relative(root: Path, path: Path) -> str:
    """`path` as a posix path relative to `root`, for messages and tool results."""
    for base, target in ((root, path), (Path(os.path.realpath(root)), path)):
        try:
            rel = Path(target).relative_to(base).as_posix()
        except ValueError:
            continue
        return rel or "."
    rel = os.path.relpath(os.path.realpath(path), os.path.realpath(root))
    if rel == ".." or rel.startswith("../"):
        raise PathEscape(f"path '{path}' is outside the worktree; {HINT}")
    return Path(rel).as_posix()


def _within(root: str, path: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
