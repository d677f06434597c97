"""Plain helpers for tests that need real git repositories in a temp folder.

Commits made here carry their own identity, so tests pass on machines without a
global git config.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

TEST_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test User",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test User",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def run(cwd: Path, *args: str, input: bytes | None = None) -> str:
    """Run git as a user would (with a fixed identity); return stdout without the last newline."""
    out = run_bytes(cwd, *args, input=input).decode("utf-8", "surrogateescape")
    return out[:-1] if out.endswith("\n") else out


def run_bytes(cwd: Path, *args: str, input: bytes | None = None) -> bytes:
    env = {**os.environ, **TEST_IDENTITY}
    done = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        env=env,
        input=input,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr.decode()}")
    return done.stdout


def write(root: Path, rel: str, content: bytes | str) -> Path:
    """Write a file (making folders); str content is written as UTF-8."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def make_repo(root: Path, files: dict[str, bytes | str] | None = None) -> Path:
    """A repository on branch main; with files, they are committed as the first commit."""
    root.mkdir(parents=True, exist_ok=True)
    run(root, "init", "--quiet", "--initial-branch=main")
    if files:
        for rel, content in files.items():
            write(root, rel, content)
        commit_all(root, "initial")
    return root


def commit_all(root: Path, message: str) -> str:
    run(root, "add", "-A")
    run(root, "commit", "--quiet", "-m", message)
    return run(root, "rev-parse", "HEAD")


def tree_files(root: Path, rev: str) -> dict[str, bytes]:
    """Every file of a commit's tree with its content (symlinks give their target)."""
    listing = run_bytes(root, "ls-tree", "-r", "-z", rev)
    files: dict[str, bytes] = {}
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, name = entry.split(b"\t", 1)
        sha = meta.split(b" ")[2].decode()
        files[os.fsdecode(name)] = run_bytes(root, "cat-file", "blob", sha)
    return files


def tree_modes(root: Path, rev: str) -> dict[str, str]:
    listing = run_bytes(root, "ls-tree", "-r", "-z", rev)
    modes: dict[str, str] = {}
    for entry in listing.split(b"\0"):
        if entry:
            meta, name = entry.split(b"\t", 1)
            modes[os.fsdecode(name)] = meta.split(b" ")[0].decode()
    return modes


def disk_files(root: Path) -> dict[str, bytes]:
    """Every file under root outside .git, with its bytes (symlinks give their target)."""
    files: dict[str, bytes] = {}
    for dirpath, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in names:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if name == ".git":
                continue
            files[rel] = os.fsencode(os.readlink(path)) if path.is_symlink() else path.read_bytes()
    return files


@dataclass(frozen=True)
class RepoState:
    """What the sandbox promises never to change in the user's repository."""

    index: bytes | None
    index_mtime_ns: int | None
    status: str
    head: str
    refs: str
    stash: str
    files: dict[str, bytes]


def repo_state(root: Path) -> RepoState:
    index = Path(run(root, "rev-parse", "--absolute-git-dir")) / "index"
    return RepoState(
        index=index.read_bytes() if index.exists() else None,
        index_mtime_ns=index.stat().st_mtime_ns if index.exists() else None,
        # --no-optional-locks: reading status must not refresh the index we compare.
        status=run(root, "--no-optional-locks", "status", "--porcelain=v1", "-z", "-uall"),
        head=_head(root),
        refs=run(root, "for-each-ref", "--format=%(refname) %(objectname)"),
        stash=run(root, "stash", "list"),
        files=disk_files(root),
    )


def _head(root: Path) -> str:
    """Where HEAD points and at which commit ('' parts when unborn or detached)."""
    ref = subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=root, capture_output=True)
    sha = subprocess.run(
        ["git", "rev-parse", "-q", "--verify", "HEAD"], cwd=root, capture_output=True
    )
    return f"{ref.stdout.decode().strip()} {sha.stdout.decode().strip()}"
