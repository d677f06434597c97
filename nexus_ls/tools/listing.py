"""Which files make up the project, the way git sees them.

Asking git leaves out what the project ignores (build output, virtualenvs,
node_modules), which is what a model wants to browse and search; a folder that is not
a git work tree is walked instead, with `.git` left out either way.
"""

from __future__ import annotations

import fnmatch
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from nexus_ls.sandbox.repo import SAFE_CONFIG

MAX_WALKED = 100_000
_GIT_LOCATION_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR")


def is_binary(raw: bytes) -> bool:
    """Git's rule of thumb: a NUL byte near the start means binary."""
    return b"\0" in raw[:8192]


def project_files(
    root: Path, base: Path, pattern: str | None, git_env: Mapping[str, str] | None = None
) -> list[str]:
    """Sorted posix paths (relative to `root`) of the files under `base`; `git_env` names
    the run's git dir outright (a command may have rewritten the worktree's `.git`)."""
    real_root = Path(os.path.realpath(root))
    rel_base = os.path.relpath(base, real_root)
    if base.is_file():
        names = [Path(rel_base).as_posix()]
    else:
        found = _git_files(real_root, rel_base, git_env)
        names = found if found is not None else _walk(real_root, base)
    prefix = "" if rel_base == "." else Path(rel_base).as_posix() + "/"
    if pattern:
        names = [n for n in names if matches(n, pattern) or matches(n[len(prefix) :], pattern)]
    return names


def matches(name: str, pattern: str) -> bool:
    """Glob match where `*.py` finds files at any depth and `a/**/b` also matches `a/b`."""
    candidates = {pattern, pattern.replace("**/", "")}
    if "/" not in pattern:
        name = name.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(name, c) for c in candidates)


def _git_files(
    root: Path, rel_base: str, git_env: Mapping[str, str] | None = None
) -> list[str] | None:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARS}
    env.update(git_env or {})
    try:
        done = subprocess.run(
            [
                "git",
                *SAFE_CONFIG,
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
                "--",
                rel_base,
            ],
            cwd=root,
            env=env,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except OSError:
        return None
    if done.returncode != 0:
        return None
    names = {n for n in done.stdout.decode("utf-8", "replace").split("\0") if n}
    return sorted(
        n
        for n in names
        if not n.endswith("/") and ".git" not in n.split("/") and os.path.lexists(root / n)
    )


def _walk(root: Path, base: Path) -> list[str]:
    names: list[str] = []
    for folder, dirs, files in os.walk(base):
        dirs[:] = sorted(d for d in dirs if d != ".git" and not os.path.islink(Path(folder, d)))
        for file in files:
            names.append(Path(os.path.relpath(Path(folder, file), root)).as_posix())
        if len(names) >= MAX_WALKED:
            break
    return sorted(n for n in names if ".git" not in n.split("/"))
