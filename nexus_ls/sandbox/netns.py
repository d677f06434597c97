"""One private network namespace for all of a run's commands and services (bubblewrap).

A run whose network is off used to give each command a network namespace of its own, so
a server one command started could never be reached by the next. Now the agent makes one
namespace per run, with loopback up and nothing else in it, and every command and service
of the run enters it before its own bubblewrap, which makes every other namespace fresh
as before (user, mount, pid, ipc, uts): `curl http://127.0.0.1:8000/` in one command
reaches the server another started, and nothing outside the run can.

How it is made: a bubblewrap with `--unshare-user --unshare-net` (it brings loopback up)
runs a shell that says it is ready and waits; the agent opens that shell's network
namespace and, through `NS_GET_USERNS`, the user namespace owning it, then lets the
shell exit. The two descriptors keep both namespaces alive with no process in them, and
die with the agent: no holder process to kill, no pid that could be reused by another.

How a command enters it: util-linux `nsenter` joins the user namespace, then the network
namespace (entering a network namespace takes CAP_SYS_ADMIN in the user namespace that
owns it: root has it everywhere, another user only inside the one it made, so the user
namespace goes first), then execs the command's bubblewrap. The descriptors reach
`nsenter` as its stdin and stdout, the only ones a parent can place without running code
in the child (`preexec_fn` is unsafe in the threaded agent, and dash cannot close a
descriptor above 9); a `/bin/sh` shim points them back at /dev/null and the output
before the command starts, so no command holds them. Inside, the command is in a user
namespace nested in the run's, with every capability dropped: it cannot change the
namespace's addresses or links (`ip link set lo down` is refused) nor leave it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass

from nexus_ls.sandbox.profile import SandboxProfile

NS_GET_USERNS = 0xB701  # _IO(0xb7, 0x1): the user namespace owning a namespace, as an fd
_MAKE_TIMEOUT = 10.0
# Runs after nsenter, before the command's bwrap: the namespaces' descriptors (stdin and
# stdout) become /dev/null and the output (stderr) again.
_SHIM = 'exec </dev/null >&2; exec "$0" "$@"'


class NetnsError(Exception):
    """The run's namespace could not be made; the message says why."""


@dataclass(frozen=True)
class Entry:
    """How to start a process inside the run's namespace: `prefix` before its argv, with
    `stdin` and `stdout` given these descriptors (its output goes to its stderr)."""

    prefix: list[str]
    stdin: int
    stdout: int


def wanted(profile: SandboxProfile | None) -> bool:
    """Whether a run with this profile shares one namespace: under bubblewrap with the
    network off (with the network on, commands are on the host's network)."""
    return profile is not None and profile.mode == "bwrap" and not profile.network


class RunNetwork:
    """The run's namespace, made on first use; `error` says why there is none."""

    def __init__(self, bwrap: str, nsenter: str | None = None) -> None:
        self.bwrap = bwrap
        self.nsenter = nsenter or shutil.which("nsenter")
        self.error: str | None = None
        self._fds: tuple[int, int] | None = None  # (user namespace, network namespace)

    @classmethod
    def for_profile(cls, profile: SandboxProfile | None) -> RunNetwork | None:
        if not wanted(profile):
            return None
        assert profile is not None and profile.bwrap is not None
        return cls(profile.bwrap)

    def entry(self) -> Entry | None:
        """How to enter the namespace (made now if it was not yet); None if it cannot be
        made here, and then each command has a namespace of its own, as before."""
        if self._fds is None and self.error is None:
            try:
                self._fds = self._make()
            except NetnsError as exc:
                self.error = str(exc)
        if self._fds is None:
            return None
        user, net = self._fds
        prefix = [
            str(self.nsenter), "--user=/proc/self/fd/0", "--net=/proc/self/fd/1",
            "--preserve-credentials", "--", "/bin/sh", "-c", _SHIM,
        ]  # fmt: skip
        return Entry(prefix, user, net)

    @property
    def inode(self) -> int | None:
        """The network namespace's inode (as `/proc/PID/ns/net` names it), once made."""
        return os.fstat(self._fds[1]).st_ino if self._fds else None

    def close(self) -> None:
        """Let go of the namespace: it goes once the last process in it has ended."""
        if self._fds is not None:
            for fd in self._fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._fds = None

    def _make(self) -> tuple[int, int]:
        if not self.nsenter:
            raise NetnsError("util-linux `nsenter` is not installed")
        info_r, info_w = os.pipe()
        try:
            holder = subprocess.Popen(
                [
                    self.bwrap, "--unshare-user", "--unshare-net", "--ro-bind", "/", "/",
                    "--die-with-parent", "--info-fd", str(info_w), "--",
                    "/bin/sh", "-c", "echo ready; read _",
                ],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=(info_w,), start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            os.close(info_r)
            raise NetnsError(f"{self.bwrap} did not start: {exc}") from None
        finally:
            os.close(info_w)
        try:
            return self._take(holder, info_r)
        finally:
            os.close(info_r)
            with contextlib.suppress(OSError):
                assert holder.stdin is not None
                holder.stdin.close()  # the holder's `read` ends: it exits
            try:
                holder.wait(timeout=_MAKE_TIMEOUT)
            except subprocess.TimeoutExpired:
                holder.kill()
                holder.wait()
            for stream in (holder.stdout, holder.stderr):
                if stream is not None:
                    stream.close()

    def _take(self, holder: subprocess.Popen[bytes], info_r: int) -> tuple[int, int]:
        """The holder's namespaces as descriptors, once its shell runs (loopback is up)."""
        assert holder.stdout is not None and holder.stderr is not None
        deadline = time.monotonic() + _MAKE_TIMEOUT
        line = _read_until(holder.stdout.fileno(), b"\n", deadline)
        if line.strip() != b"ready":
            try:
                holder.wait(timeout=1.0)
                said = holder.stderr.read().decode("utf-8", "replace").strip().splitlines()
                problem = said[-1] if said else f"exit code {holder.returncode}"
            except subprocess.TimeoutExpired:
                problem = f"no answer in {_MAKE_TIMEOUT:g} s"
            raise NetnsError(f"bubblewrap could not make the run's network namespace: {problem}")
        try:
            info = json.loads(_read_until(info_r, b"}", deadline))
            pid, expected = int(info["child-pid"]), int(info["net-namespace"])
        except (ValueError, KeyError, TypeError) as exc:
            raise NetnsError(f"bubblewrap's --info-fd was not understood: {exc}") from None
        try:
            net = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise NetnsError(f"the run's network namespace cannot be opened: {exc}") from None
        try:
            # The holder is still waiting on its stdin, so `pid` is still its shell; the
            # inode check makes sure of it all the same.
            if os.fstat(net).st_ino != expected or holder.poll() is not None:
                raise NetnsError("the run's network namespace changed while it was opened")
            user = fcntl.ioctl(net, NS_GET_USERNS)
        except (NetnsError, OSError) as exc:
            os.close(net)
            if isinstance(exc, NetnsError):
                raise
            raise NetnsError(f"the namespace's user namespace cannot be opened: {exc}") from None
        os.set_inheritable(user, False)
        return user, net


def _read_until(fd: int, end: bytes, deadline: float) -> bytes:
    """Bytes from `fd` up to and including `end` (or what came before EOF or the deadline)."""
    data = b""
    while end not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data
