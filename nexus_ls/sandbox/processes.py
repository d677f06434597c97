"""Nothing a command starts may outlive it, even a process that detached itself.

Under bubblewrap the command's pid namespace dies with it. Without one (Landlock, or
the sandbox off) a `setsid` child escapes its process group; the agent therefore makes
itself a child subreaper, so orphans of its commands become its children instead of
init's, and sweeps every descendant after each command, except the run's services
(`spare`), which live until they are stopped or the run ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Iterable

_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_DUMPABLE = 4
_subreaper = False
_spared: set[int] = set()


def become_subreaper() -> bool:
    """Adopt the orphans of this process's descendants (Linux); False where unsupported."""
    global _subreaper
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        _subreaper = bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    return _subreaper


def keep_private() -> None:
    """Make this process's memory and environment unreadable to processes of the same
    user (/proc/<pid>/environ holds the environment it started with, API key included,
    whatever it deleted since). Core dumps are off for it too."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def spare(pid: int) -> None:
    """Keep `pid` and what it starts out of every sweep: a service of the run, which
    lives until it is stopped or the run ends."""
    _spared.add(pid)


def unspare(pid: int) -> None:
    _spared.discard(pid)


def sweep() -> int:
    """In a subreaper (the agent), kill whatever its finished commands left running
    (but not its services, nor what they started)."""
    return kill_descendants(keep=_spared) if _subreaper else 0


def descendants(pid: int, keep: Iterable[int] = ()) -> list[int]:
    """Every live process below `pid`, read from /proc (empty where there is none), less
    those in `keep` and everything below them."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    kept = set(keep)
    queue = list(children.get(pid, []))
    while queue:
        child = queue.pop()
        if child in kept:
            continue
        found.append(child)
        queue.extend(children.get(child, []))
    return found


def kill_descendants(pid: int | None = None, keep: Iterable[int] = ()) -> int:
    """SIGKILL every descendant of `pid` (default: this process) but those in `keep` and
    below them, and reap the adopted ones; returns how many were killed."""
    me = os.getpid() if pid is None else pid
    victims = descendants(me, keep)
    for victim in victims:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(victim, signal.SIGKILL)
    if pid is None:
        for victim in victims:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(victim, 0)
    return len(victims)
