"""Setting up and tearing down one run's sandbox, on the host's side.

What the supervisor needs before it starts an agent (the snapshot, the policy, the
worktree, the profile; the journal lines that state them) and after it ends (the private
folders and the pids cgroup go), kept apart from the process handling.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexus_ls.config import ModelSettings
from nexus_ls.journal.redact import secret_env_names
from nexus_ls.sandbox import Workspace, create_worktree, git
from nexus_ls.sandbox.cgroups import remove_leftovers
from nexus_ls.sandbox.confinement import describe, prepare
from nexus_ls.sandbox.policy import REPOSITORY_SOURCE, Policy, build_policy, deploy_command
from nexus_ls.sandbox.profile import SandboxProfile
from nexus_ls.sandbox.repo import run_git
from nexus_ls.sandbox.settings import SandboxSettings, parse_toml
from nexus_ls.sandbox.snapshot import take_snapshot

Line = tuple[str, str, str, dict[str, Any]]  # level, category, message, data


@dataclass
class RunSandbox:
    base: str
    worktree: Path
    git_dir: str
    profile: SandboxProfile
    policy: Policy
    lines: list[Line] = field(default_factory=list)  # to journal at the run's start
    deploy: str | None = None  # the project's deploy command, run only once approved


def make_sandbox(
    ws: Workspace,
    run_id: str,
    settings: SandboxSettings,
    on_base: Callable[[str], None],
    start_at: tuple[str, str] | None = None,
) -> RunSandbox:
    """Snapshot, policy, worktree and profile of a new run (the mode was checked first);
    `on_base` records the base before the branch exists, so a kill leaves nothing unnamed.

    `start_at` (a sub-agent's): (its parent's tip, its tree's snapshot) — the worktree
    starts at the tip, no new snapshot is taken, and the policy is the tree's."""
    if start_at is None:
        snapped = take_snapshot(ws, sensitive=settings.sensitive_files)
        sha, snapshot_sha, left_out = snapped.sha, snapped.sha, snapped.left_out
    else:
        (sha, snapshot_sha), left_out = start_at, []
    on_base(sha)
    repository = repository_policy(ws, snapshot_sha)
    policy, policy_notes = build_policy(settings.allow, settings.rules, repository)
    deploy = deploy_command(repository)
    worktree = create_worktree(ws, run_id, sha)
    profile = prepare(
        state_dir=ws.state_dir,
        run_id=run_id,
        worktree=worktree,
        repo_root=ws.root,
        common_dir=ws.common_dir,
        settings=settings,
    )
    level = "WARNING" if profile.mode == "off" else "INFO"
    lines: list[Line] = [
        (level, "run", describe(profile), {"sandbox": profile.to_json(), "source": settings.source})
    ]
    lines += [("WARNING", "run", note, {}) for note in policy_notes]
    if left_out:
        shown = ", ".join(left_out[:20]) + (" ..." if len(left_out) > 20 else "")
        lines.append(
            (
                "INFO",
                "run",
                f"left out of the run's snapshot (untracked, they look sensitive): {shown}",
                {"left_out": left_out, "patterns": list(settings.sensitive_files)},
            )
        )
    git_dir = git(worktree, "rev-parse", "--absolute-git-dir")
    return RunSandbox(sha, worktree, git_dir, profile, policy, lines, deploy)


def repository_policy(ws: Workspace, base: str) -> dict[str, Any]:
    """The repository's `.nexus/policy.toml` as committed: in the commit the run's base
    was made on (its parent), so neither a copy the model wrote in an earlier run and the
    user accepted without committing, nor the worktree's; {} when there is none."""
    shown = run_git(ws.root, "show", f"{base}^:.nexus/policy.toml")
    if shown.status != 0:
        return {}
    return parse_toml(shown.stdout.decode("utf-8", "replace"), REPOSITORY_SOURCE)


def agent_environment() -> dict[str, str]:
    """The agent's environment: ours without secrets (the key travels in the start message,
    where no command can read it from /proc)."""
    secret = set(secret_env_names(os.environ))
    return {k: v for k, v in os.environ.items() if k not in secret}


def host_secrets(model: ModelSettings) -> dict[str, str]:
    """Secret values the agent must keep out of commits and events, by name."""
    found = {name: os.environ[name] for name in secret_env_names(os.environ)}
    if model.api_key and model.api_key not in found.values():
        found["api_key"] = model.api_key
    return found


def tear_down(state_dir: Path, run_id: str, pids_cgroup: str | None, agent_pid: int) -> None:
    """Remove the run's private home and /tmp and its agent's cgroup: nothing of a run
    outlives it."""
    base = state_dir / "sandbox" / run_id
    if base.exists():
        shutil.rmtree(base, onerror=_force_remove)
    remove_leftovers(pids_cgroup, agent_pid)


def _force_remove(function: Callable[..., Any], path: str, _exc: object) -> None:
    # A command may have left folders without write permission; grant it and retry.
    with contextlib.suppress(OSError):
        os.chmod(os.path.dirname(path), 0o700)
        os.chmod(path, 0o700)
        function(path)
