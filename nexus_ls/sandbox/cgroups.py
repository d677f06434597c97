"""A process limit that also holds for root: one pids cgroup per command.

RLIMIT_NPROC counts a user's processes, and the kernel never counts root's (uid 0 maps
to the initial user even inside a user namespace), so a fork bomb run by NEXUS as root
meets no limit. Root can make cgroups, though: the agent then moves itself into a pids
cgroup of its own whose `pids.max` is the limit, and its commands are born inside it
(moving each command into a cgroup of its own cost 20-30 ms). Commands run one at a
time, so the limit is per command, with the run's services beside it. The host
removes the cgroup when the run ends. Non-root users keep RLIMIT_NPROC, which works for
them; where no pids hierarchy is writable the limit is reported as not enforced.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

CANDIDATES = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup")
AGENT_SLACK = 32  # the agent's own threads and the git it runs


def pids_hierarchy() -> str | None:
    """A cgroup folder where this process can make children with `pids.max`, if any."""
    for base in CANDIDATES:
        root = Path(base)
        if not (root / "cgroup.procs").exists() or not os.access(root, os.W_OK):
            continue
        controllers = root / "cgroup.subtree_control"
        if controllers.exists() and "pids" not in controllers.read_text().split():
            continue  # cgroup v2 without the pids controller for children
        probe = root / f"nexus-probe-{os.getpid()}"
        try:
            probe.mkdir()
        except OSError:
            continue
        try:
            if (probe / "pids.max").exists():
                return base
        finally:
            with contextlib.suppress(OSError):
                probe.rmdir()
    return None


def join(hierarchy: str | None, limit: int) -> Path | None:
    """Move this process (the agent) into a new pids cgroup: every command it starts is
    then born inside it, counted without a migration per command (each costs 10-30 ms).
    The agent's own threads and git processes count too, hence the slack."""
    if not hierarchy or not limit:
        return None
    group = Path(hierarchy) / f"nexus-{os.getpid()}"
    try:
        group.mkdir(exist_ok=True)
        (group / "pids.max").write_text(str(limit + AGENT_SLACK))
        (group / "cgroup.procs").write_text(str(os.getpid()))
    except OSError:
        return None  # best effort where the hierarchy turned read-only
    return group


def _remove(group: Path) -> None:
    """Remove the cgroup once its last process has gone (killed ones take a moment)."""
    deadline = time.monotonic() + 2.0
    while True:
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                return
            with contextlib.suppress(OSError):
                for pid in (group / "cgroup.procs").read_text().split():
                    os.kill(int(pid), 9)
            time.sleep(0.01)


def remove_leftovers(hierarchy: str | None, agent_pid: int) -> None:
    """Remove an agent's cgroup once it has ended (killed stragglers first)."""
    if hierarchy:
        _remove(Path(hierarchy) / f"nexus-{agent_pid}")


def prune_stale(hierarchy: str | None) -> None:
    """Remove the cgroups of agents long gone (their host was killed before it could)."""
    if not hierarchy:
        return
    for group in Path(hierarchy).glob("nexus-*"):
        pid = group.name.removeprefix("nexus-")
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            with contextlib.suppress(OSError):
                group.rmdir()  # fails, and is kept, while any process is still in it
