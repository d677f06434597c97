"""Starting agent processes for runs: a new one, or the spare a long-lived host keeps.

An agent spends most of its start importing (`openai` alone takes about 0.7 s) and needs
nothing of its run until its `start` message. So the supervisor starts it before it makes
the run's sandbox, and the imports overlap the snapshot and the worktree; and a host that
lives on (the language server) keeps one more agent started in advance, waiting for its
`start`, so that a run's agent is ready when the run begins.

An agent starts in `/` (never in a worktree, whose files would come first on its module
path) and enters the worktree its `start` names. Its stderr goes to
`logs/<run id>.stderr`; a spare's goes to a file with no name (`O_TMPFILE`; else a
hidden one) that gets the run's name when a run takes the spare. A spare that died, or
was started with another environment, is not used: a new agent is started instead. The
spare is killed (and reaped) by `close`, and at interpreter exit; if the host is killed,
the spare reads the end of its stdin and exits.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from nexus_ls.run_sandbox import agent_environment

AGENT_COMMAND = (sys.executable, "-m", "nexus_ls.agent")
AGENT_CWD = "/"  # the agent enters the worktree named in its start message


def spawn(stderr: IO[bytes] | int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A new agent process waiting for its start message, in a session of its own."""
    return subprocess.Popen(
        AGENT_COMMAND,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        cwd=AGENT_CWD,
        env=env,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    """Kill an agent's process group and reap it (never one already reaped: its pid may
    be another process's by now); close the host's ends of its pipes."""
    if process.poll() is None:  # not reaped, so its process group id is still its own
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


class _PendingLog:
    """The stderr file of an agent no run has taken yet."""

    def __init__(self, logs: Path) -> None:
        self.path: Path | None = None
        flags = os.O_WRONLY | os.O_CLOEXEC
        try:  # no name until a run takes it: nothing is left if the host dies
            self.fd = os.open(logs, flags | os.O_TMPFILE, 0o666)
        except (AttributeError, OSError):  # not Linux, or a file system without it
            self.path = logs / f".spare-{secrets.token_hex(6)}.stderr"
            self.fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o666)

    def name(self, target: Path) -> None:
        """Give the file its run's name (OSError if it cannot be)."""
        if self.path is None:
            # linkat(AT_SYMLINK_FOLLOW): a directory descriptor makes os.link use it.
            folder = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.link(f"/proc/self/fd/{self.fd}", target.name, dst_dir_fd=folder)
            finally:
                os.close(folder)
        else:
            os.replace(self.path, target)
            self.path = None
        self.close()

    def close(self) -> None:
        """Close the host's descriptor (the agent keeps its own); unnamed, the file goes."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None


@dataclass
class _Spare:
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    log: _PendingLog

    def discard(self) -> None:
        stop(self.process)
        self.log.close()


class AgentLauncher:
    """Agent processes for one workspace's runs; with `keep_spare`, one more waits."""

    def __init__(self, logs: Path, keep_spare: bool = False) -> None:
        self.logs = logs
        self.keep_spare = keep_spare
        self._spare: _Spare | None = None
        self._closed = False
        self._lock = threading.Lock()
        _launchers.add(self)

    def launch(self, run_id: str) -> subprocess.Popen[bytes]:
        """An agent for run `run_id`, waiting for its start message, its stderr going to
        `logs/<run_id>.stderr`: the spare if it is alive and fits, else a new one."""
        env = agent_environment()
        target = self.logs / f"{run_id}.stderr"
        with self._lock:
            spare, self._spare = self._spare, None
        if spare is not None:
            if spare.process.poll() is None and spare.env == env:
                try:
                    spare.log.name(target)
                except OSError:
                    pass
                else:
                    return spare.process
            spare.discard()  # dead, started for another environment, or its log unnamed
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as stderr:
            try:
                return spawn(stderr, env)
            except BaseException:
                target.unlink(missing_ok=True)  # no agent, no log
                raise

    def refill(self, once: bool = False) -> None:
        """Start the spare, if this launcher keeps one (or `once`: for the next run only)
        and has none, or a dead one. Never raises for want of one: the next run then
        starts its own agent."""
        with self._lock:
            if not (self.keep_spare or once) or self._closed:
                return
            if self._spare is not None:
                if self._spare.process.poll() is None:
                    return
                self._spare.discard()
                self._spare = None
            try:
                self.logs.mkdir(parents=True, exist_ok=True)
                log = _PendingLog(self.logs)
            except OSError:
                return
            env = agent_environment()
            try:
                process = spawn(log.fd, env)
            except OSError:
                log.close()
                return
            except BaseException:
                log.close()
                raise
            self._spare = _Spare(process, env, log)

    def spare_pid(self) -> int | None:
        """The waiting spare's process id, if there is one."""
        spare = self._spare
        return spare.process.pid if spare is not None else None

    def close(self) -> None:
        """Kill the spare and keep none from now on (new runs still get a new agent)."""
        with self._lock:
            self._closed = True
            spare, self._spare = self._spare, None
        if spare is not None:
            spare.discard()


_launchers: weakref.WeakSet[AgentLauncher] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for launcher in list(_launchers):
        launcher.close()
