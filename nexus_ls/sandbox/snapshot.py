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
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nexus_ls.errors import NexusError
from nexus_ls.sandbox.repo import (
    NEXUS_IDENTITY,
    Workspace,
    git,
    run_git,
    stage_paths,
    status_entries,
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
    index_path, commit = _index_and_commit(ws, parent or "HEAD")
    if commit is None and parent is not None:
        raise NexusError(f"{parent} is not a commit in {ws.root}; cannot snapshot onto it")
    parents = [commit] if commit else []  # no commits yet: the snapshot is a root commit
    tree, left_out = _write_tree(ws, index_path, sensitive)
    args = ["commit-tree", "--no-gpg-sign"]
    for sha in parents:
        args += ["-p", sha]
    args += ["-m", message, tree]
    return Snapshot(git(ws.root, *args, env=dict(NEXUS_IDENTITY)), left_out)


def looks_sensitive(path: str, patterns: Sequence[str]) -> bool:
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(path, p) for p in patterns)


def _index_and_commit(ws: Workspace, name: str) -> tuple[Path, str | None]:
    """The user's index file and the commit `name` names (None if none), in one git call."""
    asked = ("rev-parse", "--git-path", "index", "--verify", "--quiet", f"{name}^{{commit}}")
    result = run_git(ws.root, *asked)
    lines = result.stdout.decode("utf-8", "surrogateescape").splitlines()
    if not lines:
        raise NexusError(f"git rev-parse failed in {ws.root}: {result.stderr.strip()}")
    commit = lines[1] if result.status == 0 and len(lines) > 1 else None
    return ws.root / lines[0], commit


def _write_tree(
    ws: Workspace, user_index: Path, sensitive: Sequence[str] = ()
) -> tuple[str, list[str]]:
    """Stage the whole working tree into a private index and write it as a tree."""
    with tempfile.TemporaryDirectory(dir=ws.state_dir, prefix="snapshot-") as tmp:
        index = Path(tmp) / "index"
        env = {"GIT_INDEX_FILE": str(index)}
        if user_index.is_file():
            # Starting from the user's index lets git reuse its stat cache: only changed
            # files are hashed again, and what the user staged is there already. Its
            # times too: a copy newer than the files would make git trust a file changed
            # in the second the user's index was written ("racily clean").
            shutil.copy2(user_index, index)
            try:
                left_out = _add_all(ws, env, sensitive)
                return git(ws.root, "write-tree", env=env), left_out
            except NexusError:
                pass  # a copy may be unreadable on its own (a split index, say)
        # From HEAD's tree, so that every tracked file the working tree still holds stays
        # tracked (an ignored one too); from nothing in a repository without commits.
        index.unlink(missing_ok=True)
        if run_git(ws.root, "read-tree", "HEAD", env=env).status != 0:
            index.unlink(missing_ok=True)
        left_out = _add_all(ws, env, sensitive)
        return git(ws.root, "write-tree", env=env), left_out


def _add_all(ws: Workspace, env: dict[str, str], sensitive: Sequence[str]) -> list[str]:
    """`git add -A` of what changed, but for untracked files matching `sensitive`;
    returns those."""
    # What is staged already is in the copied index; only what the working tree holds
    # beyond it (status's second column, `?` for untracked) is staged here. That also
    # keeps an entry git must not look at on disk (skip-worktree) as the index has it.
    entries = [(code, path) for code, path in status_entries(ws.root, env) if code[1] != " "]
    left_out = sorted(
        path for code, path in entries if code == "??" and looks_sensitive(path, sensitive)
    )
    changed = sorted({path for _, path in entries} - set(left_out))
    # A tracked path that is a folder now (a file replaced by a repository, say) is one
    # update-index would drop: `add` makes the gitlink, or says why it cannot.
    folder = any(code != "??" and _is_folder(ws.root / path) for code, path in entries)
    _stage(ws.root, changed, env, plain=not folder)
    return left_out


def _is_folder(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _stage(root: Path, paths: list[str], env: dict[str, str], plain: bool) -> None:
    """Stage `paths` with `update-index`, which takes them as plain names (`add` matches
    each as a pathspec against every index entry: 3-4x slower on a large tree). It
    applies the same attributes and filters, a nested repository becomes the same gitlink,
    and entries outside a sparse checkout stay. Whatever it refuses or skips (a path git
    will not have, which it only warns of) goes through `add`, whose error is the clear
    one; so does everything when `plain` is False."""
    if not paths:
        return
    if plain:
        names = b"\0".join(os.fsencode(path.rstrip("/")) for path in paths) + b"\0"
        command = (
            "update-index", "--add", "--remove", "--replace", "--ignore-skip-worktree-entries",
            "-z", "--stdin",
        )  # fmt: skip
        result = run_git(root, *command, env=env, stdin=names)
        if result.status == 0 and "Ignoring path" not in result.stderr:
            return
    stage_paths(root, paths, env)
