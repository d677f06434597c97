"""Running the model's shell commands in the worktree, inside the run's sandbox.

Each command runs confined (`sandbox.confinement`) in its own process group, so a
timeout or a cancel kills everything it started, not just the shell; afterwards every
process it left behind is killed too. Output goes to a temporary file, never a pipe: a
command that prints gigabytes cannot fill memory, and one that leaves a background
child holding the output open cannot hang us.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import Field

from nexus_ls.journal.redact import secret_env_names
from nexus_ls.sandbox.confinement import launch
from nexus_ls.sandbox.netns import RunNetwork
from nexus_ls.sandbox.processes import sweep
from nexus_ls.sandbox.profile import SandboxProfile
from nexus_ls.sandbox.repo import safe_git_environment
from nexus_ls.sandbox.rlimits import human_size
from nexus_ls.tools.base import (
    Args,
    Tool,
    ToolCategory,
    ToolContext,
    ToolError,
    ToolResult,
    failure,
)
from nexus_ls.tools.gate import Verdict
from nexus_ls.tools.kept import KEEP_ONE
from nexus_ls.tools.output import cap_file

MAX_TIMEOUT = 3600.0
_POLL = 0.05  # how often a running command is checked for its deadline and cancel


@dataclass
class CommandOutcome:
    """What a finished (or killed) command left behind."""

    command: str
    exit_code: int | None
    duration_ms: int
    timed_out: bool
    cancelled: bool
    output: str  # cut to the limit, for the journal
    full: str = ""  # as printed (up to `kept.KEEP_ONE`), for the model to page through


def command_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for commands when the sandbox is off: ours, minus secrets."""
    env = dict(os.environ if environ is None else environ)
    for name in secret_env_names(env):
        del env[name]
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def spawn(
    command: str,
    root: Path,
    output: IO[bytes],
    sandbox: SandboxProfile | None = None,
    network: bool = False,
    extra_env: Mapping[str, str] | None = None,
    run_network: RunNetwork | None = None,
) -> subprocess.Popen[bytes]:
    """Start `command` with `sh` in `root` in a session of its own, stdout and stderr to
    `output`, confined by `sandbox` (None: unconfined) in the run's network namespace
    when it has one and the command no network of its own."""
    stdin: int | None = None
    stdout: int | IO[bytes] = output
    if sandbox is not None and sandbox.mode != "off":
        how = launch(sandbox, command, network, run_network)
        argv, env = how.argv, sandbox.env
        if how.stdin is not None and how.stdout is not None:
            stdin, stdout = how.stdin, how.stdout
    else:
        argv, env = ["/bin/sh", "-c", command], command_env()
    return subprocess.Popen(
        argv,
        cwd=root,
        env={**env, **(extra_env or {})},
        stdin=subprocess.DEVNULL if stdin is None else stdin,
        stdout=stdout,
        stderr=output,
        start_new_session=True,
    )


def run_shell(
    command: str,
    root: Path,
    timeout: float,
    limit: int,
    cancel: threading.Event | None = None,
    sandbox: SandboxProfile | None = None,
    network: bool = False,
    extra_env: Mapping[str, str] | None = None,
    run_network: RunNetwork | None = None,
) -> CommandOutcome:
    """Run `command` with `sh` in `root`, confined by `sandbox` (None: unconfined, for
    NEXUS's own checks); kill everything it started on timeout, cancel or exit."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as sink:
        proc = spawn(command, root, sink, sandbox, network, extra_env, run_network)
        timed_out = cancelled = False
        deadline = started + timeout
        exited = _ExitWaiter(proc)
        while True:
            if exited(_POLL):
                proc.wait()
                break
            if cancel is not None and cancel.is_set():
                cancelled = True
            elif time.monotonic() >= deadline:
                timed_out = True
            if cancelled or timed_out:
                _kill_group(proc.pid)
                proc.wait()
                break
        exited.close()
        # Background children must not outlive the command that started them, not even
        # those that left its process group (they were adopted by this process). Under
        # bubblewrap its pid namespace already took them all with it.
        _kill_group(proc.pid)
        if not (sandbox is not None and sandbox.mode == "bwrap"):
            sweep()
        output = cap_file(sink, limit)
        full = cap_file(sink, KEEP_ONE)
    duration_ms = int((time.monotonic() - started) * 1000)
    killed = timed_out or cancelled
    return CommandOutcome(
        command, None if killed else proc.returncode, duration_ms, timed_out, cancelled, output,
        full,
    )  # fmt: skip


class _ExitWaiter:
    """Waits for a process's exit and wakes the moment it exits: through a pidfd where the
    kernel has one (Popen.wait polls with growing sleeps, adding up to 5 ms a command)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        try:
            self.pidfd: int | None = os.pidfd_open(proc.pid)  # type: ignore[attr-defined]
        except (AttributeError, OSError):
            self.pidfd = None

    def __call__(self, seconds: float) -> bool:
        if self.pidfd is None:
            try:
                self.proc.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                return False
            return True
        ready, _, _ = select.select([self.pidfd], [], [], seconds)
        return bool(ready)

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def describe_kill(outcome: CommandOutcome, timeout: float) -> str | None:
    """The error line for a command that did not finish by itself, else None."""
    if outcome.cancelled:
        return "error: cancelled; the command and everything it started were killed"
    if outcome.timed_out:
        return (
            f"error: timed out after {timeout:g} s; the command and everything it started were "
            "killed (pass a larger timeout, or run less at once)"
        )
    return None


def sandbox_notes(outcome: CommandOutcome, sandbox: SandboxProfile | None) -> list[str]:
    """Why a command failed, when the sandbox made it fail: the model should not retry the
    same thing, nor conclude the project is broken."""
    if sandbox is None or sandbox.mode == "off":
        return []
    notes = []
    limits, code = sandbox.limits, outcome.exit_code
    if code in (128 + signal.SIGXFSZ, -signal.SIGXFSZ):
        notes.append(
            f"note: a file reached the sandbox's file size limit ({human_size(limits.file_size)}"
            " per file) and the command was stopped; write less, or ask the user to raise "
            "limits.file_size"
        )
    if code in (128 + signal.SIGXCPU, -signal.SIGXCPU):
        notes.append(
            f"note: the command used its {limits.cpu_time} s of CPU time and was stopped "
            "(limits.cpu_time)"
        )
    output = outcome.full or outcome.output
    if "Read-only file system" in output:
        notes.append(
            "note: the sandbox lets commands write only in the project, $HOME and /tmp; git's "
            "own data is read-only too: NEXUS commits each step that changes files itself, "
            "so do not run git add/commit/checkout/stash"
        )
    if not sandbox.network and (
        "Network is unreachable" in output
        or "Temporary failure in name resolution" in output
        or "Could not resolve host" in output
    ):
        notes.append(
            "note: commands have no network in this run; pass network: true to ask the user "
            "for it, or work offline"
        )
    return notes


def command_result(
    outcome: CommandOutcome,
    timeout: float,
    head: str,
    data: dict[str, Any],
    category: ToolCategory,
    sandbox: SandboxProfile | None = None,
    scrub: Callable[[str], str] | None = None,
) -> ToolResult:
    """The observation for a command: its head line and output, or why it was killed."""
    shown = outcome.full or outcome.output or "(no output)"
    if scrub is not None:
        shown = scrub(shown)
    error = describe_kill(outcome, timeout)
    notes = "".join(f"\n{note}" for note in sandbox_notes(outcome, sandbox))
    if error is not None:
        text = f"{error}\noutput so far:\n{shown}{notes}"
        return ToolResult(False, text, data, category=category)
    return ToolResult(True, f"{head}\n{shown}{notes}", data, category=category)


def check_timeout(timeout: float | None, default: float) -> float:
    """The timeout to use; a model's out-of-range value is refused with the allowed range."""
    if timeout is None:
        return default
    if not 0 < timeout <= MAX_TIMEOUT:
        raise ToolError(f"timeout must be between 0 and {MAX_TIMEOUT:g} seconds")
    return float(timeout)


def gate(
    ctx: ToolContext, command: str, network: bool, category: ToolCategory
) -> Verdict | ToolResult:
    """The policy's verdict for `command` (asking the user if it says so), or the refusal
    to hand the model."""
    if ctx.gate is None:
        return Verdict(True, network)
    verdict = ctx.gate.check(command, network)
    if not verdict.run:
        return failure(verdict.refusal, category=category, command=command, **verdict.data)
    return verdict


def unconfined_env(ctx: ToolContext) -> dict[str, str]:
    """For a command a rule lets out of the sandbox: git pinned to the run's own git dir
    (a command may have rewritten the worktree's `.git`), hooks and fsmonitor off."""
    return {**(ctx.git_env or {}), **safe_git_environment()}


def run_command(
    ctx: ToolContext, command: str, timeout: float | None = None, network: bool = False
) -> ToolResult:
    """Run a shell command in the project root; stdout and stderr come back together."""
    if not command.strip():
        raise ToolError("command is empty; give a shell command to run")
    seconds = check_timeout(timeout, ctx.command_timeout)
    if ctx.time_left is not None:
        seconds = min(seconds, max(ctx.time_left, 0.1))
    if ctx.cancel is not None and ctx.cancel.is_set():
        return failure("cancelled before the command started", category="command")
    verdict = gate(ctx, command, network, "command")
    if isinstance(verdict, ToolResult):
        return verdict
    limit = ctx.output_limit - 200
    sandbox = None if verdict.unconfined else ctx.sandbox  # the user's rule says so
    outcome = run_shell(
        command, ctx.root, seconds, limit, ctx.cancel, sandbox, verdict.network,
        unconfined_env(ctx) if verdict.unconfined else None, ctx.run_network,
    )  # fmt: skip
    head = f"exit code {outcome.exit_code} ({outcome.duration_ms / 1000:.1f} s)"
    data = {**asdict(outcome), **verdict.data, "network": verdict.network}
    del data["full"]
    data["sandboxed"] = sandbox is not None and sandbox.mode != "off"
    return command_result(outcome, seconds, head, data, "command", ctx.sandbox, ctx.scrub)


class CommandArgs(Args):
    command: str = Field(description="The shell command line.")
    timeout: float | None = Field(
        None, description="Seconds before the command is killed (the default suits most)."
    )
    network: bool = Field(
        False,
        description="Ask for network access for this command (commands have none by "
        "default; the user may have to approve).",
    )


def _command_subject(args: CommandArgs, result: ToolResult) -> str:
    return f"run `{args.command.strip()[:60]}`"


TOOLS = (
    Tool(
        "run_command",
        "Run a shell command in the project root (stdin is empty; stdout and stderr are "
        "combined; background processes do not outlive the command). Non-zero exit codes "
        "are reported, not errors.",
        CommandArgs,
        run_command,
        category="command",
        changes_files=True,
        subject=_command_subject,
    ),
)
