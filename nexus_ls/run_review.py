"""Reviewing a workspace's finished runs: which commit holds a run's change, accept, discard.

Kept apart from the supervisor's process handling: reviewing needs the workspace, its run
records and its journal, never an agent. A run can be reviewed once it has ended, until
it is discarded; a run without a readable record (damaged, or only orphaned git state)
can still be discarded.
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

from nexus_ls.errors import NexusError
from nexus_ls.journal import Journal
from nexus_ls.memory import WorkspaceMemory
from nexus_ls.run_recovery import Damaged, Orphan, branch_head, find_leftover, remove_leftover
from nexus_ls.runs import DamagedRecord, NoSuchRun, RunRecord, RunStore, read_regular
from nexus_ls.sandbox import AcceptIncomplete, Workspace, branch_name, discard, net_diff
from nexus_ls.sandbox.accept import accept
from nexus_ls.sandbox.worktree import release_worktree


class Emit(Protocol):
    """Journal one event of a run (and tell whoever follows the runs)."""

    def __call__(
        self,
        record: RunRecord,
        level: str,
        category: str,
        message: str,
        data: dict[str, Any] | None = None,
    ) -> dict[str, Any]: ...


def run_head(ws: Workspace, record: RunRecord) -> str:
    """The branch's tip while it exists (a run may have moved on), else the recorded head."""
    return branch_head(ws, record.branch) or record.head


def check_ended(record: RunRecord) -> None:
    """A run can be reviewed once it has ended, until it is discarded."""
    if not record.finished:
        raise NexusError(f"run {record.id} is still {record.status}; wait for it or cancel it")
    if record.review == "discarded":
        raise NexusError(
            f"run {record.id} was discarded; its diff is in `nexus log --run {record.id}`"
        )


class RunReview:
    """Accept and discard for one workspace; every decision is journaled through `emit`."""

    def __init__(
        self,
        ws: Workspace,
        store: RunStore,
        journal: Journal,
        emit: Emit,
        memory: WorkspaceMemory | None = None,
    ) -> None:
        self.ws = ws
        self.store = store
        self.journal = journal
        self.emit = emit
        # Every accept and discard teaches the workspace's memory (and weighs its lessons).
        self.memory = memory or WorkspaceMemory(ws.state_dir, journal)

    def head(self, record: RunRecord) -> str:
        return run_head(self.ws, record)

    def reviewable(self, run: str) -> RunRecord:
        """The record of a run (an id or a unique prefix) that can be reviewed, or why not."""
        record = self.store.find(run)
        check_ended(record)
        if not record.base:
            raise NexusError(
                f"run {record.id} stopped before its snapshot was made; there is nothing to "
                f"review, and `nexus discard {record.id}` removes it"
            )
        return record

    def accept(self, run: str) -> tuple[RunRecord, list[str]]:
        """Merge a finished run's net change into the user's working tree (or refuse, naming
        the conflicting files, with nothing changed)."""
        record = self.reviewable(run)
        try:
            paths = accept(self.ws, record.base, self.head(record), key=record.id)
        except AcceptIncomplete as exc:
            self.emit(record, "WARNING", "run", f"run partly accepted: {exc}",
                      {"files": exc.applied, "left": exc.skipped})  # fmt: skip
            raise
        record.review = "accepted"
        self.store.save(record)
        if reusable(record):
            with contextlib.suppress(NexusError, OSError):  # its change is in the tree: done
                release_worktree(self.ws, record.id)
        files = f"{len(paths)} file{'' if len(paths) == 1 else 's'}"
        event = self.emit(record, "INFO", "run", f"run accepted: {files} changed", {"files": paths})
        self.memory.reviewed(record.id, record.task, "accepted", paths, [event["id"]])
        return record, paths

    def discard(self, run: str) -> RunRecord | Damaged | Orphan:
        """Remove a finished run's worktree and branch, and its sub-agents'; the journal
        keeps their diffs. A run with no readable record (damaged, or only orphaned git
        state) is removed too."""
        try:
            record = self.store.find(run)
        except (DamagedRecord, NoSuchRun):
            return self.discard_leftover(run)
        return self._discard(record, tidying=False)

    def _discard(self, record: RunRecord, tidying: bool) -> RunRecord:
        check_ended(record)  # one that stopped before its snapshot may go too
        # An accepted run's change is the user's: removing it is no verdict on it, nor on
        # its sub-agents' work, which it merged.
        cleanup = tidying or record.review == "accepted"
        for child in self.sub_agents(record):
            self._discard(child, cleanup)
        head = self.head(record)
        diff = net_diff(self.ws, record.base, head) if record.base else ""
        discard(self.ws, record.id, keep=reusable(record))
        record.review = "discarded"
        self.store.save(record)
        event = self.emit(record, "INFO", "run", "run discarded: worktree and branch removed",
                          {"diff": diff, "head": head})  # fmt: skip
        if not cleanup:
            files = changed_files(diff)
            self.memory.reviewed(record.id, record.task, "discarded", files, [event["id"]])
        return record

    def sub_agents(self, record: RunRecord) -> list[RunRecord]:
        """The runs `record` spawned that are not discarded yet (their ids extend its own)."""
        found = []
        for run_id in self.store.ids():
            if run_id.startswith(f"{record.id}-"):
                with contextlib.suppress(DamagedRecord, NoSuchRun):
                    child = self.store.load(run_id)
                    if child.parent == record.id and child.review != "discarded":
                        found.append(child)
        return found

    def discard_leftover(self, run: str) -> Damaged | Orphan:
        """Remove what a run left without a readable record; the journal keeps the record's
        text (a regular file only) and the branch's head."""
        entry = find_leftover(self.ws, self.store, run)
        raw = ""
        with contextlib.suppress(OSError, ValueError):  # never a link, FIFO or device
            raw = read_regular(self.store.dir / f"{entry.id}.json").decode(errors="replace")
        head = branch_head(self.ws, branch_name(entry.id))  # its commits stay reachable by id
        remove_leftover(self.ws, self.store, entry)
        self.journal.log(
            "INFO", "run", f"{entry.status} run {entry.id} discarded: {entry.error}",
            run=entry.id, agent=entry.id,
            data={**entry.to_json(), "record": raw[:20_000], "head": head},
        )  # fmt: skip
        return entry


def changed_files(diff: str) -> list[str]:
    """The paths a net diff changes, in its order."""
    found = [line.split(" b/", 1)[1] for line in diff.splitlines()
             if line.startswith("diff --git a/") and " b/" in line]  # fmt: skip
    return list(dict.fromkeys(found))


def reusable(record: RunRecord) -> bool:
    """Whether a finished run's worktree may go to the pool for a later run. Only under
    bubblewrap does every process of the run end with it (one pid namespace); under
    Landlock, or with the sandbox off, one that detached itself may outlive the run and
    still write into its worktree, which the pool would hand to the next run."""
    return record.sandbox == "bwrap"
