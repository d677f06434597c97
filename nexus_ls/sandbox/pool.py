"""Worktrees kept for the next run: a finished run's checkout moved to a new base and branch
instead of a new one checked out from nothing.

`git worktree add` writes every file of the tree: on a large repository that is most of a
run's start. A worktree is cleaned when it is kept, once its run's processes are gone:
`clean -ffdx` removes everything git does not track there (untracked and ignored files,
nested repositories) and a sweep the `.git` of repositories inside tracked folders. The next
run then only moves it, with `checkout -f -B` (which rewrites only the files that differ
between the two commits) and one more `clean -ffdx` for what the last run's index held
beyond its commits, so the run starts on exactly its base's files, as it would in a fresh
checkout. Only a worktree `park` cleaned is used; any other is dropped.

A run's commands may have changed anything in their worktree, its `.git` file included, so
nothing in it is trusted: the link between the checkout and git's metadata for it is written
again from the common dir (which commands cannot write), and git runs with `GIT_DIR` and
`GIT_WORK_TREE` set. Whatever fails on the way takes that worktree out of the pool; the run
then gets a fresh one.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from nexus_ls.errors import NexusError
from nexus_ls.sandbox.repo import Workspace, run_git

__all__ = ["POOL_ENV", "park", "pool_size", "pooled", "take"]

POOL_ENV = "NEXUS_WORKTREE_POOL"
DEFAULT_SIZE = 2
MAX_SIZE = 64
CLEAN_MARK = "nexus-kept"  # in git's metadata for the worktree, which no run can write
PARKING, CLAIM = ".parking-", ".claim-"  # private names: `-<pid>` ends them
STALE_LOCK_S = 60
LOCK_TEXT = "moved by NEXUS, pid"  # then the pid: what `git worktree list` shows as reason


def pool_size(environ: Mapping[str, str] | None = None) -> int:
    """How many finished runs' worktrees to keep: `NEXUS_WORKTREE_POOL`, 0 keeps none."""
    text = (os.environ if environ is None else environ).get(POOL_ENV, "").strip()
    if not text:
        return DEFAULT_SIZE
    if not text.isdigit() or int(text) > MAX_SIZE:
        raise NexusError(
            f"{POOL_ENV}={text!r} is not a number of worktrees to keep: use 0 to {MAX_SIZE}"
        )
    return int(text)


def pool_dir(ws: Workspace) -> Path:
    return ws.state_dir / "pool"


def pooled(ws: Workspace) -> list[Path]:
    """The kept worktrees, oldest first (one being claimed, `.`-named, is not among them)."""
    folder = pool_dir(ws)
    kept: list[tuple[float, Path]] = []
    with suppress(OSError):
        for entry in os.scandir(folder):
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                continue
            with suppress(OSError):  # taken by another run meanwhile
                kept.append((entry.stat(follow_symlinks=False).st_mtime, Path(entry.path)))
    return [path for _, path in sorted(kept)]


def park(ws: Workspace, worktree: Path) -> bool:
    """Keep a finished run's worktree for a later run, its HEAD detached so the run's branch
    can be deleted; False (and the worktree left where it was, or gone) when the pool is
    full, disabled or set wrongly, or the worktree cannot be kept."""
    try:
        size = pool_size()
    except NexusError:
        return False  # said when a run starts; removing the worktree as before is safe
    if size == 0 or worktree.is_symlink() or not worktree.is_dir():
        return False
    if len(pooled(ws)) >= size:
        return False
    admin = _admin_dir(ws, worktree)
    if admin is None:
        return False
    head = run_git(ws.root, "--git-dir", str(admin), "rev-parse", "--verify", "-q", "HEAD")
    if head.status != 0:
        return False
    slot = pool_dir(ws) / worktree.name
    if slot.exists() or slot.is_symlink():
        slot = slot.with_name(f"{worktree.name}-{os.getpid()}-{time.monotonic_ns()}")
    parking = slot.with_name(f"{PARKING}{slot.name}-{os.getpid()}")  # unlisted until clean
    slot.parent.mkdir(exist_ok=True)
    place = worktree
    try:
        with _locked(admin):
            os.rename(worktree, parking)
            place = parking
            _link(admin, parking)
            _git(admin, parking, "update-ref", "--no-deref", "HEAD", head.stdout.decode().strip())
            _clean(admin, parking)
            (admin / CLEAN_MARK).write_text("cleaned when kept\n", encoding="utf-8")
            os.utime(parking)  # the pool's order: when it was kept
            if len(pooled(ws)) >= size:  # filled by another process meanwhile
                raise NexusError("the pool is full")
            # Git's side first: listed from the rename on, it must be findable (and then
            # seen locked, so left alone) at once.
            (admin / "gitdir").write_text(f"{slot / '.git'}\n", encoding="utf-8")
            os.rename(parking, slot)
            place = slot
    except BaseException as exc:
        if place != worktree:
            _drop(ws, place)  # unlocked now, so the prune forgets it
        if isinstance(exc, NexusError | OSError):
            return False
        raise  # interrupted: nothing of it is left in the pool
    return True


def take(ws: Workspace, worktree: Path, branch: str, base: str) -> bool:
    """Move a kept worktree to `worktree`, on a new `branch` at `base`, holding exactly the
    base's files; False when the pool has none that could be moved (nothing left behind)."""
    _sweep(ws)
    for slot in reversed(pooled(ws)):  # the newest first: the likeliest to be near `base`
        admin = _admin_dir(ws, slot)
        if admin is not None and _moving(admin):
            continue  # being kept or taken right now, by another process
        if admin is None or not (admin / CLEAN_MARK).is_file():
            _drop(ws, slot)  # not kept by `park`, or not cleaned when it was
            continue
        claim = slot.with_name(f"{CLAIM}{worktree.name}-{os.getpid()}")  # no other run lists it
        try:
            os.rename(slot, claim)  # the claim: of two runs, one gets it
        except OSError:
            continue
        try:
            with _locked(admin):
                (admin / CLEAN_MARK).unlink()  # in use from here on
                _link(admin, claim)
                _git(admin, claim, "checkout", "-q", "-f", "-B", branch, base)
                # What the last run's index held beyond its commits, a checkout leaves.
                _git(admin, claim, "clean", "-q", "-ffdx")
                os.rename(claim, worktree)
                _link(admin, worktree)
        except BaseException as exc:
            _drop(ws, claim)
            _drop(ws, worktree)
            run_git(ws.root, "branch", "-D", "--quiet", branch)  # if the checkout made it
            if isinstance(exc, NexusError | OSError):
                continue
            raise
        return True
    return False


def _moving(admin: Path) -> bool:
    """Whether git's lock on the worktree says another process is moving it now; a lock
    older than a minute is one a killed process left."""
    try:
        return time.time() - (admin / "locked").stat().st_mtime < STALE_LOCK_S
    except OSError:
        return False


def _sweep(ws: Workspace) -> None:
    """Drop what a process killed while it kept or took a worktree left: its git lock,
    which would keep `git worktree prune` off git's metadata for it (and its branch
    checked out there) for good, and the worktree under its private name. Both carry
    the mover's pid."""
    with suppress(OSError):
        for admin in (ws.common_dir / "worktrees").iterdir():
            with suppress(OSError):
                said = (admin / "locked").read_text(encoding="utf-8")
                if said.startswith(LOCK_TEXT) and not _alive(said.strip()):
                    (admin / "locked").unlink()
    with suppress(OSError):
        for entry in os.scandir(pool_dir(ws)):
            if entry.name.startswith(".") and not _alive(entry.name):
                _drop(ws, Path(entry.path))


def _alive(named: str) -> bool:
    """Whether the process whose pid ends `named` (after its last `-` or space) runs."""
    pid = named.replace(" ", "-").rsplit("-", 1)[-1]
    if not pid.isdigit():
        return False  # a name from before pids were in them
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, OverflowError):
        return False
    except OSError:
        return True  # another user's: alive
    return True


def _clean(admin: Path, worktree: Path) -> None:
    """Leave only what git tracks there: a run's last commands wrote what they liked."""
    # Before any checkout: a `.gitattributes` the last run left would steer it.
    _git(admin, worktree, "clean", "-q", "-ffdx")
    # `clean` never removes a `.git` inside a tracked folder; a fresh checkout has none.
    for folder, dirs, files in os.walk(worktree):
        if folder == str(worktree):
            dirs[:] = [d for d in dirs if d != ".git"]
            continue
        if ".git" in dirs or ".git" in files:
            nested = Path(folder, ".git")
            if nested.is_dir() and not nested.is_symlink():
                shutil.rmtree(nested)
            else:
                nested.unlink()
            dirs[:] = [d for d in dirs if d != ".git"]


@contextmanager
def _locked(admin: Path) -> Iterator[None]:
    """Git's own worktree lock, held while the worktree moves: a `git worktree prune` from
    another process must not take its metadata while the two disagree on where it is."""
    lock = admin / "locked"
    lock.write_text(f"{LOCK_TEXT} {os.getpid()}\n", encoding="utf-8")
    try:
        yield
    finally:
        with suppress(OSError):
            lock.unlink()


def _admin_dir(ws: Workspace, worktree: Path) -> Path | None:
    """Git's metadata folder for `worktree`, found from the common dir's side."""
    wanted = str(worktree / ".git")
    folder = ws.common_dir / "worktrees"
    with suppress(OSError):
        for admin in folder.iterdir():
            with suppress(OSError):
                if (admin / "gitdir").read_text(encoding="utf-8").strip() == wanted:
                    return admin
    return None


def _link(admin: Path, worktree: Path) -> None:
    """Point git's metadata at the worktree's place, and the worktree's `.git` at it, whatever
    a command left there."""
    (admin / "gitdir").write_text(f"{worktree / '.git'}\n", encoding="utf-8")
    dotgit = worktree / ".git"
    if dotgit.is_dir() and not dotgit.is_symlink():
        shutil.rmtree(dotgit)
    elif dotgit.exists() or dotgit.is_symlink():
        dotgit.unlink()
    dotgit.write_text(f"gitdir: {admin}\n", encoding="utf-8")


def _git(admin: Path, worktree: Path, *args: str) -> None:
    env = {**os.environ, "GIT_DIR": str(admin), "GIT_WORK_TREE": str(worktree)}
    result = run_git(worktree, *args, env=env)
    if result.status != 0:
        raise NexusError(f"git {args[0]} in a kept worktree failed: {result.stderr.strip()}")


def _drop(ws: Workspace, worktree: Path) -> None:
    """Remove a worktree that cannot be kept or reused (folders a run made unwritable too);
    git forgets it at the next prune."""
    if worktree.is_symlink():
        worktree.unlink()
    elif worktree.exists():
        shutil.rmtree(worktree, onerror=_writable_then_retry)
    run_git(ws.root, "worktree", "prune")


def _writable_then_retry(function: Any, path: str, _info: Any) -> None:
    with suppress(OSError):
        os.chmod(os.path.dirname(path), 0o700)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o700)
        function(path)
