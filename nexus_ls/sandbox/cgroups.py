"""A process limit that also holds for root: one pids cgroup per command.

RLIMIT_NPROC counts a user's processes, and the kernel never counts root's (uid 0 maps
to the initial user even inside a user namespace), so a fork bomb run by NEXUS as root
meets no limit. Root can make cgroups, though: each command then runs in its own pids
cgroup whose `pids.max` is the limit. Non-root users keep RLIMIT_NPROC, which works
for them; where no pids hierarchy is writable the limit is reported as not enforced.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path

CANDIDATES = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup")
_counter = itertools.count(1)


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


@contextlib.contextmanager
def pids_limit(hierarchy: str | None, limit: int, argv: list[str]) -> Iterator[list[str]]:
    """`argv` made to start inside a new cgroup of at most `limit` processes (the shell
    joins it before it execs, so nothing escapes the count); removed afterwards."""
    if not hierarchy or not limit:
        yield argv
        return
    group = Path(hierarchy) / f"nexus-{os.getpid()}-{next(_counter)}"
    try:
        group.mkdir()
        (group / "pids.max").write_text(str(limit))
    except OSError:
        yield argv  # the limit is best effort where the hierarchy turned read-only
        return
    try:
        yield ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(group / "cgroup.procs"), *argv]
    finally:
        _remove(group)


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
    """Remove the cgroups of an agent that was killed mid-command."""
    if hierarchy:
        for group in Path(hierarchy).glob(f"nexus-{agent_pid}-*"):
            _remove(group)
