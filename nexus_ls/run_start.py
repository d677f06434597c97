"""Starting a run, the one way the command line and the language server both use.

A front end gathers what the user chose (`nexus run`'s flags, or the editor's settings)
into `RunOptions` and the task's context (`--file`, or the editor's selection), then
`start_run` checks the limits, reads the sandbox settings, resolves the model (each step
noted for the journal), and has the supervisor make the run's sandbox and start its agent.
The front end keeps only its own way of showing things: progress lines on stderr, or
the editor's progress and messages.

`prepare_run` is the first half alone, for a front end that must do something between
resolving and starting (the server begins its progress there); it makes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nexus_ls.config import Limits, RunSettings
from nexus_ls.errors import NexusError
from nexus_ls.models.resolve import resolve
from nexus_ls.sandbox.settings import resolve_sandbox

if TYPE_CHECKING:
    from nexus_ls.runs import RunRecord
    from nexus_ls.supervisor import Supervisor

MAX_SECONDS = 30 * 24 * 3600  # past this a timer cannot be set, and no run needs it


@dataclass(frozen=True)
class RunOptions:
    """What the user set for one run, as flags or editor settings; None leaves a setting
    to the environment, then the defaults."""

    model: str | None = None
    base_url: str | None = None
    tool_mode: str | None = None
    local_model: str | None = None
    guided: bool | None = None
    limits: Limits = field(default_factory=Limits)
    sandbox: str | None = None  # auto, bwrap, landlock or off
    network: bool | None = None
    allow: tuple[str, ...] = ()  # leading words of commands allowed without asking


@dataclass(frozen=True)
class PreparedRun:
    """A run checked and resolved, not yet started: nothing exists for it."""

    task: str
    settings: RunSettings
    context: str = ""
    notes: tuple[str, ...] = ()  # how the model was chosen, journaled after `run started`
    notice: str | None = None  # what the front end shows first (the bundled model's notice)

    def start(self, supervisor: Supervisor) -> RunRecord:
        """Make the run's sandbox and start its agent (the supervisor checks the task)."""
        return supervisor.start(self.task, self.settings, self.context, notes=self.notes)


def prepare_run(
    task: str,
    options: RunOptions,
    *,
    context: str = "",
    environ: Mapping[str, str] | None = None,
) -> PreparedRun:
    """Check the limits, read the sandbox settings and resolve the model, cheapest first;
    NexusError, naming the setting, for anything the user must fix. Probes loopback ports,
    so a front end with an event loop calls it off that loop."""
    limits = check_limits(options.limits)
    sandbox = resolve_sandbox(
        mode=options.sandbox, network=options.network, allow=options.allow, environ=environ
    )
    resolution = resolve(
        model=options.model,
        base_url=options.base_url,
        tool_mode=options.tool_mode,
        local_model=options.local_model,
        guided=options.guided,
        environ=environ,
    )
    return PreparedRun(
        task=task,
        settings=RunSettings(resolution.settings, limits, sandbox),
        context=context,
        notes=tuple(resolution.notes()),
        notice=resolution.notice,
    )


def start_run(
    supervisor: Supervisor,
    task: str,
    options: RunOptions,
    *,
    context: str = "",
    on_notice: Callable[[str], None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> RunRecord:
    """Prepare the run and start it; `on_notice` is told the bundled model's notice (also
    journaled) before anything is made. Returns the run's record, `running`."""
    prepared = prepare_run(task, options, context=context, environ=environ)
    if prepared.notice and on_notice:
        on_notice(prepared.notice)
    return prepared.start(supervisor)


def check_limits(limits: Limits) -> Limits:
    """Reject limits that would make a run meaningless, naming the flag."""
    for name in ("max_steps", "max_tokens", "wall_time", "command_timeout"):
        value = getattr(limits, name)
        if not math.isfinite(value) or value <= 0:  # nan would compare false: no limit at all
            raise NexusError(f"{name.replace('_', '-')} must be a positive number, not {value}")
        if name in ("wall_time", "command_timeout") and value > MAX_SECONDS:
            raise NexusError(f"{name.replace('_', '-')} must be at most {MAX_SECONDS} s (30 days)")
    if limits.context_tokens < 0:
        raise NexusError(f"context-tokens must be 0 or more, not {limits.context_tokens}")
    if limits.memory_tokens < 0:
        raise NexusError(f"memory-tokens must be 0 or more, not {limits.memory_tokens}")
    if limits.context_window is not None and limits.context_window <= 0:
        raise NexusError(f"context-window must be a positive number, not {limits.context_window}")
    for name in ("max_depth", "max_agents"):
        if getattr(limits, name) < 0:
            raise NexusError(f"{name.replace('_', '-')} must be 0 or more (0: no sub-agents)")
    if limits.parallel_agents < 1:
        raise NexusError(f"parallel-agents must be 1 or more, not {limits.parallel_agents}")
    if limits.candidates < 1:
        raise NexusError(f"candidates must be 1 or more, not {limits.candidates}")
    return limits
