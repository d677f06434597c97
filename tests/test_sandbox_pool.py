"""The worktree pool: a finished run's worktree reused by the next run holds exactly what a
fresh checkout of the new base would, whatever the last run left in it."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_git import commit_all, make_repo, repo_state, run, write

from nexus_ls.errors import NexusError
from nexus_ls.journal import Journal
from nexus_ls.run_recovery import list_runs
from nexus_ls.run_review import RunReview
from nexus_ls.runs import RunRecord, RunStore
from nexus_ls.sandbox import create_worktree, open_workspace, remove_worktree, worktree_path
from nexus_ls.sandbox import pool as pool_module
from nexus_ls.sandbox.pool import CLEAN_MARK, LOCK_TEXT, POOL_ENV, pool_size, pooled
from nexus_ls.sandbox.repo import Workspace
from nexus_ls.sandbox.worktree import release_worktree


def everything(root: Path) -> dict[str, tuple[str, int, bytes]]:
    """Every entry under root but `.git`: its kind, permission bits and bytes (or target)."""
    found: dict[str, tuple[str, int, bytes]] = {}
    for dirpath, dirs, names in os.walk(root):
        for name in [*dirs, *names]:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if rel == ".git":
                continue
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                found[rel] = ("link", 0, os.fsencode(os.readlink(path)))
            elif stat.S_ISDIR(mode):
                found[rel] = ("dir", stat.S_IMODE(mode), b"")
            else:
                found[rel] = ("file", stat.S_IMODE(mode), path.read_bytes())
        dirs[:] = [d for d in dirs if not (dirpath == str(root) and d == ".git")]
    return found


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(
        tmp_path / "proj",
        {
            ".gitignore": "build/\n*.pyc\n",
            "a.txt": "a\n",
            "run.sh": "#!/bin/sh\necho hi\n",
            "src/mod.py": "x = 1\n",
            "docs/old.md": "old\n",
        },
    )
    (root / "run.sh").chmod(0o755)
    os.symlink("a.txt", root / "link")
    commit_all(root, "with a link")
    return root


def second_base(root: Path) -> str:
    """Another commit: a file changed, one added, one removed."""
    write(root, "a.txt", "a, changed\n")
    write(root, "new/added.txt", "added\n")
    (root / "docs" / "old.md").unlink()
    return commit_all(root, "second")


def make_a_mess(worktree: Path, user_git: Path) -> None:
    """What a run's commands can leave: every kind of change a checkout must undo."""
    write(worktree, "a.txt", "edited by the run\n")
    (worktree / "src" / "mod.py").unlink()
    (worktree / "run.sh").chmod(0o644)
    write(worktree, "untracked.txt", "left over\n")
    write(worktree, "build/out.o", b"\x00ignored")
    write(worktree, "cache.pyc", b"ignored too")
    write(worktree, "deep/er/still.txt", "untracked folder\n")
    run(worktree / "deep", "init", "--quiet", "nested")  # a repository of its own
    os.symlink("/etc/passwd", worktree / "outside")
    (worktree / "link").unlink()
    os.symlink("run.sh", worktree / "link")
    # Attributes that would turn every file the next checkout writes into CRLF.
    write(worktree, ".gitattributes", "* text eol=crlf\n")
    # Repositories inside tracked folders, one aimed at the user's, one with its own config.
    write(worktree, "src/.git", f"gitdir: {user_git}\n")
    run(worktree / "docs", "init", "--quiet")
    write(worktree, "untracked-dir/locked/file.txt", "in a folder made read-only\n")
    (worktree / "untracked-dir" / "locked").chmod(0o555)
    # The worktree's link to git's metadata, aimed at the user's repository.
    (worktree / ".git").write_text(f"gitdir: {user_git}\n")


def admin_of(ws: Workspace, worktree: Path) -> Path:
    """Git's metadata folder for a worktree, as the common dir records it."""
    for admin in (ws.common_dir / "worktrees").iterdir():
        if (admin / "gitdir").read_text().strip() == str(worktree / ".git"):
            return admin
    raise AssertionError(f"git has no worktree at {worktree}")


def fresh_checkout(root: Path, base: str, where: Path) -> Path:
    run(root, "worktree", "add", "--quiet", "--detach", str(where), base)
    return where


def one_kept(repo: Path) -> tuple[Workspace, str]:
    """The workspace and its HEAD, after one run's worktree was discarded into the pool."""
    ws = open_workspace(repo)
    base = run(repo, "rev-parse", "HEAD")
    create_worktree(ws, "r1", base)
    remove_worktree(ws, "r1")
    return ws, base


def test_a_recycled_worktree_is_byte_identical_to_a_fresh_one(repo: Path, tmp_path: Path) -> None:
    ws = open_workspace(repo)
    first = run(repo, "rev-parse", "HEAD")
    old = create_worktree(ws, "r1", first)
    write(old, "committed.txt", "the run's commit\n")
    write(old, "src/.gitattributes", "* text eol=crlf\n")  # committed: in the index too
    run(old, "add", "committed.txt", "src/.gitattributes")
    run(old, "commit", "--quiet", "-m", "a step")
    make_a_mess(old, repo / ".git")
    base = second_base(repo)
    user = repo_state(repo)

    remove_worktree(ws, "r1")  # discarded: kept, not removed
    (kept,) = pooled(ws)
    assert not old.exists()
    assert "nexus/r1" not in run(repo, "branch", "--list")
    kept_admin = admin_of(ws, kept)
    new = create_worktree(ws, "r2", base)

    assert pooled(ws) == []
    assert admin_of(ws, new) == kept_admin  # it was the kept one that was used
    expected = everything(fresh_checkout(repo, base, tmp_path / "fresh"))
    assert everything(new) == expected
    assert run(new, "status", "--porcelain", "--ignored", "--untracked-files=all") == ""
    assert run(new, "symbolic-ref", "HEAD") == "refs/heads/nexus/r2"
    assert run(new, "rev-parse", "HEAD") == base
    admin = Path(run(new, "rev-parse", "--absolute-git-dir"))
    assert admin.parent == ws.common_dir / "worktrees"  # its own metadata, not the user's
    after = repo_state(repo)
    assert (after.index, after.status, after.head, after.files) == (
        user.index,
        user.status,
        user.head,
        user.files,
    )


def test_a_recycled_worktree_gets_new_commits_on_its_own_branch(repo: Path) -> None:
    ws, base = one_kept(repo)
    new = create_worktree(ws, "r2", base)
    write(new, "step.txt", "one step\n")
    run(new, "add", "step.txt")
    run(new, "commit", "--quiet", "-m", "step")
    assert run(repo, "log", "--format=%s", "-1", "nexus/r2") == "step"
    assert run(repo, "rev-parse", "HEAD") == base  # the user's branch did not move
    assert run(repo, "status", "--porcelain") == ""


def test_the_pool_keeps_up_to_its_size(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = open_workspace(repo)
    base = run(repo, "rev-parse", "HEAD")
    monkeypatch.setenv(POOL_ENV, "1")
    for run_id in ("r1", "r2", "r3"):
        create_worktree(ws, run_id, base)
    for run_id in ("r1", "r2"):
        remove_worktree(ws, run_id)
    assert [p.name for p in pooled(ws)] == ["r1"]
    assert not worktree_path(ws, "r2").exists()
    monkeypatch.setenv(POOL_ENV, "0")
    remove_worktree(ws, "r3")
    assert [p.name for p in pooled(ws)] == ["r1"]
    listed = run(repo, "worktree", "list", "--porcelain")
    assert listed.count("worktree ") == 2  # the user's and the one kept


def test_a_bad_pool_size_is_refused_saying_what_works() -> None:
    assert pool_size({}) == 2
    assert pool_size({POOL_ENV: "0"}) == 0
    for bad in ("-1", "two", "1000"):
        with pytest.raises(NexusError, match=f"{POOL_ENV}=.*use 0 to"):
            pool_size({POOL_ENV: bad})


def test_a_kept_worktree_that_cannot_be_moved_gives_way_to_a_fresh_one(repo: Path) -> None:
    ws, base = one_kept(repo)
    (kept,) = pooled(ws)
    admin = Path(run(kept, "rev-parse", "--absolute-git-dir"))
    (admin / "index.lock").write_text("")  # a git that died in it
    new = create_worktree(ws, "r2", base)
    assert run(new, "rev-parse", "HEAD") == base
    assert run(new, "status", "--porcelain", "--ignored") == ""
    assert pooled(ws) == [] and not admin.exists()  # the broken one is gone
    assert [p.name for p in (ws.state_dir / "pool").iterdir()] == []
    assert run(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/nexus") == "nexus/r2"


def test_pooled_worktrees_are_not_runs_nor_orphans(repo: Path) -> None:
    ws = open_workspace(repo)
    base = run(repo, "rev-parse", "HEAD")
    create_worktree(ws, "20240101-aaaa", base)
    remove_worktree(ws, "20240101-aaaa")
    assert len(pooled(ws)) == 1
    assert list_runs(ws) == []


def test_release_keeps_the_branch(repo: Path) -> None:
    ws: Workspace = open_workspace(repo)
    base = run(repo, "rev-parse", "HEAD")
    create_worktree(ws, "r1", base)
    assert release_worktree(ws, "r1")
    assert run(repo, "rev-parse", "nexus/r1") == base
    assert not worktree_path(ws, "r1").exists() and len(pooled(ws)) == 1
    remove_worktree(ws, "r1")  # later discarded: the branch goes, the kept worktree stays
    assert run(repo, "branch", "--list", "nexus/*") == ""
    assert len(pooled(ws)) == 1


def test_a_worktree_in_the_pool_that_park_did_not_clean_is_not_used(repo: Path) -> None:
    """Only `park` cleans: a worktree that reached the pool any other way (an older NEXUS,
    a move by hand) is dropped, and the run gets a fresh checkout."""
    ws, base = one_kept(repo)
    (kept,) = pooled(ws)
    admin = admin_of(ws, kept)
    (admin / CLEAN_MARK).unlink()
    write(kept, ".gitattributes", "* text eol=crlf\n")  # would steer the checkout
    new = create_worktree(ws, "r2", base)
    assert admin_of(ws, new) != admin and not admin.exists()
    assert run(new, "status", "--porcelain", "--ignored", "--untracked-files=all") == ""
    assert pooled(ws) == []


def test_a_run_id_already_in_the_pool_keeps_both(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = open_workspace(repo)
    base = run(repo, "rev-parse", "HEAD")
    monkeypatch.setenv(POOL_ENV, "3")
    for run_id in ("r1", "other"):
        create_worktree(ws, run_id, base)
    for run_id in ("r1", "other"):
        remove_worktree(ws, run_id)
    create_worktree(ws, "r1", base)  # the same id again, in the newest kept worktree
    assert [p.name for p in pooled(ws)] == ["r1"]
    remove_worktree(ws, "r1")
    assert len(pooled(ws)) == 2
    for kept in pooled(ws):
        assert run(kept, "status", "--porcelain", "--ignored", "--untracked-files=all") == ""


@pytest.mark.parametrize(
    ("sandbox", "kept"), [("bwrap", 1), ("landlock", 0), ("off", 0), (None, 0)]
)
def test_only_a_run_whose_processes_all_ended_with_it_is_kept(
    repo: Path, sandbox: str | None, kept: int
) -> None:
    """Under Landlock or with the sandbox off, a process that detached itself may outlive
    its run and go on writing into its worktree: that worktree must not be the next run's."""
    ws = open_workspace(repo)
    base = run(repo, "rev-parse", "HEAD")
    store = RunStore(ws.state_dir)
    review = RunReview(ws, store, Journal(ws.state_dir / "journal.jsonl"), emit=_emit)
    for run_id in ("accepted", "discarded"):
        create_worktree(ws, run_id, base)
        store.save(
            RunRecord(
                id=run_id,
                task="t",
                status="succeeded",
                branch=f"nexus/{run_id}",
                base=base,
                head=base,
                sandbox=sandbox,
            )  # fmt: skip
        )
    review.accept("accepted")
    review.discard("discarded")
    assert len(pooled(ws)) == 2 * kept
    assert worktree_path(ws, "accepted").exists() == (not kept)  # else it stays till discarded
    assert not worktree_path(ws, "discarded").exists()


def _emit(
    record: RunRecord, level: str, category: str, message: str, data: dict | None = None
) -> dict:
    return {"id": f"{record.id}-{category}"}


def worktrees_git_knows(repo: Path) -> int:
    return run(repo, "worktree", "list", "--porcelain").count("worktree ")


def test_a_park_interrupted_while_it_cleans_leaves_nothing_behind(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = open_workspace(repo)
    base = run(repo, "rev-parse", "HEAD")
    create_worktree(ws, "r1", base)

    def interrupted(admin: Path, worktree: Path) -> None:
        raise KeyboardInterrupt  # Ctrl-C during the slowest part of keeping it

    monkeypatch.setattr(pool_module, "_clean", interrupted)
    with pytest.raises(KeyboardInterrupt):
        remove_worktree(ws, "r1")
    assert list((ws.state_dir / "pool").iterdir()) == []
    assert not worktree_path(ws, "r1").exists()
    remove_worktree(ws, "r1")  # the user discards again: the branch goes too
    assert worktrees_git_knows(repo) == 1
    assert run(repo, "branch", "--list", "nexus/*") == ""


def test_what_a_killed_process_left_under_a_private_name_is_swept(repo: Path) -> None:
    ws, base = one_kept(repo)
    (kept,) = pooled(ws)
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid no process has now
    kept.rename(kept.with_name(f".parking-r1-{gone.pid}"))
    assert worktrees_git_knows(repo) == 2
    create_worktree(ws, "r2", base)
    assert [p.name for p in (ws.state_dir / "pool").iterdir()] == []
    assert worktrees_git_knows(repo) == 2  # the user's and r2's


def test_a_kept_worktree_another_process_is_moving_is_left_alone(repo: Path) -> None:
    ws, base = one_kept(repo)
    (kept,) = pooled(ws)
    admin = admin_of(ws, kept)
    (admin / "locked").write_text(f"{LOCK_TEXT} {os.getpid()}\n")  # alive, mid-move
    new = create_worktree(ws, "r2", base)
    assert admin_of(ws, new) != admin  # a fresh checkout instead
    assert pooled(ws) == [kept] and (admin / CLEAN_MARK).is_file()


KILLED_TAKE = """
import os, signal, sys
from nexus_ls.sandbox import create_worktree, open_workspace
from nexus_ls.sandbox import pool

moved = pool._git

def killed_after_checkout(admin, worktree, *args):
    moved(admin, worktree, *args)
    if args[0] == "checkout":
        os.kill(os.getpid(), signal.SIGKILL)

pool._git = killed_after_checkout
create_worktree(open_workspace(sys.argv[1]), "r2", sys.argv[2])
"""


def test_a_take_killed_midway_leaves_nothing_a_discard_cannot_remove(repo: Path) -> None:
    ws, base = one_kept(repo)
    killed = subprocess.run([sys.executable, "-c", KILLED_TAKE, str(repo), base])
    assert killed.returncode == -signal.SIGKILL
    assert "locked" in run(repo, "worktree", "list", "--porcelain")  # as the kill left it
    create_worktree(ws, "r3", base)  # the next run's start sweeps
    remove_worktree(ws, "r2")  # what `nexus discard` does for the run that died
    assert run(repo, "branch", "--list", "nexus/r2") == ""
    assert "locked" not in run(repo, "worktree", "list", "--porcelain")
    assert worktrees_git_knows(repo) == 2  # the user's and r3's


def test_a_take_while_a_park_publishes_leaves_it_kept(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = open_workspace(repo)
    base = run(repo, "rev-parse", "HEAD")
    create_worktree(ws, "r1", base)
    rename = os.rename
    took: list[bool] = []

    def then_take(old: str | Path, new: str | Path) -> None:
        rename(old, new)
        if Path(old).name.startswith(".parking-") and not took:  # just listed
            took.append(pool_module.take(ws, worktree_path(ws, "r2"), "nexus/r2", base))

    monkeypatch.setattr(pool_module.os, "rename", then_take)
    assert release_worktree(ws, "r1")
    monkeypatch.undo()
    assert took == [False]  # it saw the park under way and left the worktree to it
    (kept,) = pooled(ws)
    assert run(kept, "status", "--porcelain", "--ignored") == ""


def test_a_leftover_with_a_number_no_pid_can_be_is_swept(repo: Path) -> None:
    ws, base = one_kept(repo)
    (kept,) = pooled(ws)
    kept.rename(kept.with_name(f".parking-r1-{10**15}"))  # as an earlier NEXUS named them
    create_worktree(ws, "r2", base)
    assert [p.name for p in (ws.state_dir / "pool").iterdir()] == []
