"""Committing each step that changed files, and telling the model what was left out.

The agent's side of `sandbox.commits`: the rationale scrubbed of secrets, the step's
`edit` event with its diff, and a note for the model when the guard left something out
(said once per file, not at every later step while the file stays in the worktree).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from nexus_ls.errors import NexusError
from nexus_ls.journal import Redactor
from nexus_ls.sandbox.commits import (
    CommitGuard,
    commit_change,
    commit_step,
    describe_refusals,
    worktree_env,
)

Emit = Callable[..., None]  # emit(level, category, message, *, step=None, data=None)


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

    def __call__(self, tool: str, summary: str, rationale: str, step: int) -> str | None:
        """Commit the step; the note for the model about what was not committed, if any."""
        summary, rationale = self.redactor.scrub_text(summary), self.redactor.scrub_text(rationale)
        try:
            commit = commit_step(
                self.worktree, tool, summary, rationale, self.run_id, step, self.git_dir, self.guard
            )
        except NexusError as exc:  # e.g. a .gitattributes git cannot apply: not a crash
            failed = (
                f"note: this step could not be committed ({exc}); its change stays in the "
                "worktree, and the next step's commit will try again"
            )
            self.emit("WARNING", "edit", f"step {step}: {failed[6:]}", step=step,
                      data={"error": str(exc), "note": failed})  # fmt: skip
            return failed
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
            self._journal_commit(commit.sha, tool, summary, rationale, step)
        return note

    def _journal_commit(self, sha: str, tool: str, summary: str, rationale: str, step: int) -> None:
        data = {**commit_change(self.worktree, sha, self.env), "tool": tool, "rationale": rationale}
        self.emit("INFO", "edit", f"step {step}: commit {sha[:10]} {tool}: {summary}", step=step,
                  data=data)  # fmt: skip


def _news(found: Mapping[str, int], told: dict[str, int]) -> dict[str, int]:
    """The entries of `found` not yet told (or changed since), remembered as told now."""
    new = {path: size for path, size in found.items() if told.get(path) != size}
    told.update(found)
    return new
