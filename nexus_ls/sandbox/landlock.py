"""The fallback sandbox: Landlock, for kernels (5.13+) where bubblewrap cannot run.

Landlock lets an unprivileged process give up access to files (and, from ABI 4, TCP)
for itself and everything it starts. It is an allowlist: each folder gets the rights
it keeps, so the homes, /run and the password files are simply never granted. Unlike
bubblewrap it cannot give a command its own /tmp or process table: commands write
their temporary files under the run's private folder (TMPDIR), and what they start is
killed by the agent when they end.

This file is also the launcher (`python -I -S landlock.py SPEC -- ARGV`): it sets the
limits, restricts itself and execs the command. It imports nothing but the standard
library so it starts fast and runs without the package on sys.path.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import signal
import sys
from collections.abc import Iterable
from typing import Any

_CREATE, _ADD_RULE, _RESTRICT = 444, 445, 446  # the same on every architecture
_PR_SET_NO_NEW_PRIVS, _PR_SET_PDEATHSIG = 38, 1
_PR_CAPBSET_DROP, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 24, 47, 4
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
# Per architecture: (audit arch, socket, first x32 number or 0, calls refused outright:
# io_uring_setup, which opens sockets without socket(2); System V IPC, which reaches the
# host's shared memory, queues and semaphores without a namespace; the kernel keyring).
_SYSCALLS = {
    "x86_64": (
        0xC000003E, 41, 0x40000000,
        (425, 29, 30, 31, 64, 65, 66, 67, 68, 69, 70, 71, 220, 248, 249, 250),
    ),
    "aarch64": (
        0xC00000B7, 198, 0,
        (425, 186, 187, 188, 189, 190, 191, 192, 193, 194, 195, 196, 197, 217, 218, 219),
    ),
}  # fmt: skip
_AF_INET, _AF_INET6, _AF_NETLINK = 2, 10, 16
_PATH_BENEATH, _NET_PORT = 1, 2
_VERSION_FLAG = 1

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_MAKE_AND_REMOVE = sum(1 << n for n in range(4, 13))  # remove dir/file, make char..sym
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX, SCOPE_SIGNAL = 1 << 0, 1 << 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The kernel's Landlock ABI (0: not available)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        version = _libc().syscall(_CREATE, None, ctypes.c_size_t(0), _VERSION_FLAG)
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def fs_rights(abi: int) -> int:
    rights = EXECUTE | WRITE_FILE | READ_FILE | READ_DIR | _MAKE_AND_REMOVE
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


def readable(hidden: Iterable[str], masked: Iterable[str], extra: Iterable[str]) -> list[str]:
    """Folders and files to grant read on: everything but the hidden and masked paths.

    A folder that holds a hidden path is granted child by child, so only what must
    stay hidden is left out.
    """
    blocked = {os.path.normpath(p) for p in (*hidden, *masked)}
    granted: list[str] = []

    def walk(folder: str) -> None:
        if not any(b != folder and _within(folder, b) for b in blocked):
            granted.append(folder)
            return
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            return
        for name in names:
            path = os.path.join(folder, name)
            if path in blocked or os.path.islink(path):
                continue
            if os.path.isdir(path):
                walk(path)
            else:
                granted.append(path)

    walk("/")
    for path in extra:  # made readable again inside hidden ones, less what they hide
        if os.path.exists(path):
            walk(os.path.normpath(path))
    return granted


def restrict(spec: dict[str, Any]) -> None:
    """Restrict this process (and what it execs) to `spec`; raises OSError if it cannot."""
    libc = _libc()
    abi = int(spec["abi"])
    all_fs = fs_rights(abi)
    attr = _RulesetAttr(all_fs, 0, 0)
    size = ctypes.sizeof(_RulesetAttr)
    if abi < 4:
        size = 8  # older kernels know only handled_access_fs
    elif abi < 6:
        size = 16
    if abi >= 4 and not spec["network"]:
        attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP
    if abi >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL
    ruleset = libc.syscall(_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    read = EXECUTE | READ_FILE | READ_DIR
    try:
        for path in spec["read"]:
            _add(libc, ruleset, path, read)
        for path in spec["write"]:
            _add(libc, ruleset, path, all_fs)
        for path in spec["write_files"]:
            _add(libc, ruleset, path, READ_FILE | WRITE_FILE | (TRUNCATE if abi >= 3 else 0))
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
        if libc.syscall(_RESTRICT, ruleset, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
        program = socket_filter(bool(spec["network"]))
        if program is not None:
            install_filter(program)
    finally:
        os.close(ruleset)


def _add(libc: Any, ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # vanished since it was listed: nothing to grant
    try:
        if not os.path.isdir(path):
            rights &= FILE_RIGHTS
        rule = _PathBeneath(rights, fd)
        if libc.syscall(_ADD_RULE, ruleset, _PATH_BENEATH, ctypes.byref(rule), 0) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
    finally:
        os.close(fd)


def drop_capabilities() -> None:
    """Give up every capability for good: run as root, Landlock alone leaves a command
    CAP_SYS_ADMIN, CAP_MKNOD, CAP_NET_RAW and the rest (bubblewrap drops them itself)."""
    libc = _libc()
    for cap in range(64):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == errno.EINVAL:
            break  # past the last capability this kernel knows
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]

    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def socket_filter(network: bool) -> bytes | None:
    """A seccomp program that refuses socket(2) (but socketpair): Landlock confines TCP
    only, and a unix socket of the host (Docker's, an ssh agent's) is reached by path.
    With the network granted, internet and netlink sockets are allowed again. It also
    refuses what bubblewrap's namespaces would have kept apart: io_uring, System V IPC,
    the keyring. None on architectures this does not know."""
    numbers = _SYSCALLS.get(os.uname().machine)
    if numbers is None:
        return None
    arch, socket_nr, x32, refused = numbers
    allow, deny = 0x7FFF0000, 0x00050000 | errno.EACCES
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    families = [_AF_INET, _AF_INET6, _AF_NETLINK] if network else []
    program: list[tuple[int, int, int, int]] = [
        (ld, 0, 0, 4),  # arch
        (jeq, 1, 0, arch),
        (ret, 0, 0, deny),  # another ABI (32-bit calls): refused
        (ld, 0, 0, 0),  # syscall number
    ]
    if x32:
        program += [(jge, 0, 1, x32), (ret, 0, 0, deny)]
    for number in refused:
        program += [(jeq, 0, 1, number), (ret, 0, 0, deny)]
    program += [
        (jeq, 1, 0, socket_nr),
        (ret, 0, 0, allow),
        (ld, 0, 0, 16),  # the address family, socket's first argument
    ]
    for family in families:
        program += [(jeq, 0, 1, family), (ret, 0, 0, allow)]
    program.append((ret, 0, 0, deny))
    return b"".join(
        code.to_bytes(2, "little") + bytes([jt, jf]) + k.to_bytes(4, "little")
        for code, jt, jf, k in program
    )


def install_filter(program: bytes) -> None:
    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

    prog = Prog(len(program) // 8, program)
    if _libc().prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "seccomp filter refused")


def _within(root: str, path: str) -> bool:
    return root == "/" or path == root or path.startswith(root.rstrip("/") + "/")


def _limit(limits: dict[str, int]) -> None:
    pairs = (
        (resource.RLIMIT_FSIZE, limits.get("file_size", 0)),
        (resource.RLIMIT_NPROC, limits.get("processes", 0)),
        (resource.RLIMIT_CPU, limits.get("cpu_time", 0)),
        (resource.RLIMIT_AS, limits.get("address_space", 0)),
    )
    for which, value in pairs:
        if value:
            _, hard = resource.getrlimit(which)
            capped = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (capped, capped))


def main(argv: list[str]) -> int:
    """Launcher: `SPEC -- COMMAND...`; exit 126 with a message if confinement fails."""
    if len(argv) < 3 or argv[1] != "--":
        print("usage: landlock.py SPEC -- COMMAND...", file=sys.stderr)
        return 2
    spec = json.loads(argv[0])
    try:
        _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        _limit(spec["limits"])
        drop_capabilities()
        restrict(spec)
    except OSError as exc:
        print(f"nexus sandbox: cannot confine the command with Landlock: {exc}", file=sys.stderr)
        return 126
    os.execvp(argv[2], argv[2:])
    return 127  # pragma: no cover - execvp does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
