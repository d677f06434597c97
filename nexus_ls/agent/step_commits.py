"""Committing each step that changed files, and telling the model what was left out.

The agent's side of `sandbox.commits`: the rationale scrubbed of secrets, the step's
`edit` event with its diff, and a note for the model when the guard left something out
(said once per file, not at every later step while the file stays in the worktree).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nexus_ls.agent.acting import Change, Emit
from nexus_ls.errors import NexusError
from nexus_ls.journal import Redactor
from nexus_ls.sandbox.commits import (
    CommitGuard,
    commit_change,
    commit_paths,
    commit_step,
    describe_refusals,
    tool_change,
    worktree_env,
)


class StepCommits:
    def __init__(
        self,
        worktree: Path,
        git_dir: Path | None,
        run_id: str,
        guard: CommitGuard,
        redactor: Redactor,
        emit: Emit,
    ) -> None:
        self.worktree, self.git_dir, self.run_id = worktree, git_dir, run_id
        self.guard, self.redactor, self.emit = guard, redactor, emit
        self.env = worktree_env(worktree, git_dir)
        self.told_large: dict[str, int] = {}
        self.told_nested: set[str] = set()
        # Nothing else differs from HEAD: a step whose tools know their paths may commit
        # just those (`commit_paths`); after a refused or failed commit the tree decides.
        self.settled = True

    def __call__(self, change: Change) -> str | None:
        """Commit the step; the note for the model about what was not committed, if any."""
        step, tool = change.step, ", ".join(dict.fromkeys(change.tools))
        summary = self.redactor.scrub_text(change.subject)
        rationale = self.redactor.scrub_text(change.rationale)
        try:
            if change.paths is not None and self.settled:
                commit = commit_paths(self.worktree, change.paths, tool, summary, rationale,
                                      self.run_id, step, self.git_dir, self.guard)  # fmt: skip
            else:
                commit = commit_step(self.worktree, tool, summary, rationale, self.run_id, step,
                                     self.git_dir, self.guard)  # fmt: skip
        except NexusError as exc:  # e.g. a .gitattributes git cannot apply: not a crash
            self.settled = False
            failed = (
                f"note: this step could not be committed ({exc}); its change stays in the "
                "worktree, and the next step's commit will try again"
            )
            self.emit("WARNING", "edit", f"step {step}: {failed[6:]}", step=step,
                      data={"error": str(exc), "note": failed})  # fmt: skip
            return failed
        self.settled = not commit.refused
        commit.too_large = _news(commit.too_large, self.told_large)
        commit.nested = [p for p in commit.nested if p not in self.told_nested]
        self.told_nested.update(commit.nested)
        note = describe_refusals(commit, self.guard.size_limit)
        if note:
            self.emit(
                "WARNING",
                "edit",
                f"step {step}: {note.splitlines()[0].removeprefix('note: ')}",
                step=step,
                data={"refused": commit.refused, "too_large": commit.too_large, "note": note},
            )
        if commit.sha:
            if commit.files and change.diff is not None:  # the tools' own diff: no git show
                facts = tool_change(commit.sha, commit.files, self.redactor.scrub_text(change.diff))
            else:
                facts = commit_change(self.worktree, commit.sha, self.env)
            self._journal_commit(commit.sha, facts, tool, summary, rationale, step)
        return note

    def _journal_commit(
        self, sha: str, facts: dict[str, Any], tool: str, summary: str, rationale: str, step: int
    ) -> None:
        data = {**facts, "tool": tool, "rationale": rationale, "subject": summary}
        self.emit("INFO", "edit", f"step {step}: commit {sha[:10]} {summary}", step=step,
                  data=data)  # fmt: skip


def _news(found: Mapping[str, int], told: dict[str, int]) -> dict[str, int]:
    """The entries of `found` not yet told (or changed since), remembered as told now."""
    new = {path: size for path, size in found.items() if told.get(path) != size}
    told.update(found)
    return new
