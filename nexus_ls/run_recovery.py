"""What is left when a run's host died: its record brought up to date, and git state
that no record names.

A host killed mid-run cannot record the branch's last commit, and an event the agent
sent as the host died may never reach the journal; the branch itself is the truth. The
first reader to find the run interrupted takes the head from the branch and journals
each commit with no `edit` event as recovered. Branches `nexus/*` and worktrees without
a record (from a start killed before its record existed, or a record removed by hand)
are listed as orphaned, and `nexus discard` removes them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from nexus_ls.errors import NexusError
from nexus_ls.journal import Journal
from nexus_ls.runs import RUN_ID, Damaged, RunRecord, RunStore
from nexus_ls.sandbox import Workspace, branch_name, git
from nexus_ls.sandbox.commits import commit_change
from nexus_ls.sandbox.repo import run_git
from nexus_ls.sandbox.worktree import remove_worktree

PREFIX = "nexus/"


def run_store(ws: Workspace) -> RunStore:
    """The workspace's run records, recovering interrupted runs from their branches."""
    return RunStore(ws.state_dir, recover=lambda record: recover(ws, record))


def branch_head(ws: Workspace, branch: str) -> str | None:
    result = run_git(ws.root, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}")
    return result.stdout.decode().strip() or None if result.status == 0 else None


def recover(ws: Workspace, record: RunRecord) -> None:
    """Bring an interrupted run's record to its branch, journaling commits whose events
    were lost."""
    head = branch_head(ws, record.branch) if record.branch else None
    if head is None:
        return
    record.head = head
    if not record.base:
        return
    journal = Journal.for_state_dir(ws.state_dir)
    seen = {
        (event.get("data") or {}).get("commit")
        for event in journal.query(run=record.id, category="edit")
    }
    listed = run_git(ws.root, "rev-list", "--reverse", f"{record.base}..{head}")
    for sha in listed.stdout.decode().split():
        if sha not in seen:
            message, data = _recovered(ws, sha)
            journal.log("WARNING", "edit", message, run=record.id, agent=record.id, data=data)


def _recovered(ws: Workspace, sha: str) -> tuple[str, dict[str, Any]]:
    subject = git(ws.root, "show", "-s", "--format=%s", sha)
    message = (
        f"recovered commit {sha[:10]} {subject} (the run was interrupted before it was journaled)"
    )
    return message, {**commit_change(ws.root, sha), "recovered": True}


@dataclass
class Orphan:
    """A run's branch or worktree with no record."""

    id: str
    branch: str | None
    worktree: str | None
    status: str = "orphaned"

    @property
    def error(self) -> str:
        parts = [f"branch {self.branch}" if self.branch else "", self.worktree and "a worktree"]
        held = " and ".join(p for p in parts if p)
        return f"{held} with no run record; `nexus discard {self.id}` removes it"

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "error": self.error}


Listed = RunRecord | Damaged | Orphan


def orphans(ws: Workspace, known: set[str]) -> list[Orphan]:
    """`nexus/*` branches and run worktrees that no record names."""
    branches = run_branches(ws)
    folder = ws.state_dir / "worktrees"
    trees = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    found = []
    for run_id in sorted((branches | trees) - known, reverse=True):
        if RUN_ID.fullmatch(run_id):
            branch = branch_name(run_id) if run_id in branches else None
            tree = str(folder / run_id) if run_id in trees else None
            found.append(Orphan(run_id, branch, tree))
    return found


def run_branches(ws: Workspace) -> set[str]:
    """The ids of `nexus/*` branches. Read from git's ref files when the repository keeps
    them there (a listing stays a directory read, ~1 ms, not a git process, ~5 ms)."""
    common = ws.common_dir
    if (common / "reftable").exists():
        refs = git(ws.root, "for-each-ref", "--format=%(refname:short)", f"refs/heads/{PREFIX}")
        return {b[len(PREFIX) :] for b in refs.splitlines() if b.startswith(PREFIX)}
    loose = common / "refs" / "heads" / "nexus"
    found = {p.name for p in loose.iterdir() if p.is_file()} if loose.is_dir() else set()
    try:
        packed = (common / "packed-refs").read_text(encoding="utf-8", errors="replace")
    except OSError:
        packed = ""
    marker = f" refs/heads/{PREFIX}"
    for line in packed.splitlines():
        if marker in line and not line.startswith(("#", "^")):
            found.add(line.split(marker, 1)[1])
    return found


def list_runs(ws: Workspace, store: RunStore | None = None) -> list[Listed]:
    """Every run, newest first: records, damaged records, and orphaned git state."""
    store = store or run_store(ws)
    listed: list[Listed] = list(store.scan())
    listed += orphans(ws, {entry.id for entry in listed})
    listed.sort(key=lambda entry: entry.id, reverse=True)
    return listed


def find_leftover(ws: Workspace, store: RunStore, prefix: str) -> Damaged | Orphan:
    """The damaged record or orphaned git state that `prefix` names."""
    if not prefix:
        raise NexusError("give a run id (or the start of one); `nexus runs` lists them")
    wanted = [
        entry
        for entry in list_runs(ws, store)
        if isinstance(entry, Damaged | Orphan) and entry.id.startswith(prefix)
    ]
    exact = [entry for entry in wanted if entry.id == prefix]
    if len(exact or wanted) != 1:
        raise NexusError(
            f"no run matches {prefix!r}; `nexus runs` lists them"
            if not wanted
            else f"{prefix!r} matches several runs; give more of the id"
        )
    return (exact or wanted)[0]


def remove_leftover(ws: Workspace, store: RunStore, entry: Damaged | Orphan) -> None:
    """Remove the git state of a run that has no readable record (and that record); its
    worktree is not kept for later runs, since nothing says how its commands were confined."""
    remove_worktree(ws, entry.id, keep=False)
    if isinstance(entry, Damaged):
        store.remove(entry.id)
