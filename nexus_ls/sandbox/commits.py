"""One commit per step that changed files, with the model's reasons and run trailers.

The trailers make a run's history searchable with plain git
(`git log --grep 'Nexus-Run: <id>'`) long after the journal is gone.
"""

from __future__ import annotations

import os
from pathlib import Path

from nexus_ls.sandbox.repo import NEXUS_IDENTITY, git, git_bytes, run_git

SUMMARY_LIMIT = 72


def format_message(tool: str, summary: str, rationale: str, run_id: str, step: int) -> str:
    """Subject `<tool>: <summary>`, then the rationale, then Nexus-Run / Nexus-Step trailers."""
    lines = summary.strip().splitlines()
    subject = lines[0].strip() if lines else ""
    if len(subject) > SUMMARY_LIMIT:
        subject = subject[: SUMMARY_LIMIT - 3].rstrip() + "..."
    parts = [f"{tool}: {subject}" if subject else tool]
    if rationale.strip():
        parts.append(rationale.strip())
    parts.append(f"Nexus-Run: {run_id}\nNexus-Step: {step}")
    return "\n\n".join(parts) + "\n"


def commit_step(
    worktree: Path, tool: str, summary: str, rationale: str, run_id: str, step: int
) -> str | None:
    """Commit everything the step changed; None when it changed nothing."""
    git(worktree, "add", "-A")
    if run_git(worktree, "diff", "--cached", "--quiet").status == 0:
        return None
    message = format_message(tool, summary, rationale, run_id, step)
    # Hooks and signing belong to the user's own commits, not to a run's steps.
    git(
        worktree,
        "commit",
        "--quiet",
        "--no-verify",
        "--no-gpg-sign",
        "--cleanup=verbatim",
        "-F",
        "-",
        env=dict(NEXUS_IDENTITY),
        stdin=message.encode(),
    )
    return git(worktree, "rev-parse", "HEAD")


def changed_files(worktree: Path) -> list[str]:
    """Paths with uncommitted changes (staged, unstaged or untracked) in the worktree."""
    out = git_bytes(worktree, "status", "--porcelain", "-z", "--untracked-files=all")
    fields = out.split(b"\0")
    paths: set[str] = set()
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        paths.add(os.fsdecode(entry[3:]))
        if entry[:1] in (b"R", b"C"):
            # A rename or copy is followed by its source path.
            paths.add(os.fsdecode(fields[i]))
            i += 1
    return sorted(paths)
