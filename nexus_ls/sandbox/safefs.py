"""File access for the agent's own tools that no trick in the worktree can redirect.

`paths.resolve_inside` checks a path's spelling; this module does the I/O so that what
is checked is what is touched. No symlink is followed in any component (`openat2`
with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS where the kernel has it, one O_NOFOLLOW
component at a time otherwise), only regular files are read or replaced (a FIFO would
block a read forever, a device would feed it without end), and writes go to a temp file
renamed over the target, so a hard link to someone else's file is never written through.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import stat
import sys
from pathlib import Path

from nexus_ls.sandbox.paths import PathEscape

_OPENAT2 = 437  # the same syscall number on every architecture Linux has
_RESOLVE_NO_MAGICLINKS, _RESOLVE_NO_SYMLINKS, _RESOLVE_BENEATH = 0x02, 0x04, 0x08
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
use_openat2 = sys.platform.startswith("linux")  # off: the per-component walk (tests)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


class UnsafeFile(PathEscape):
    """A path the tools will not touch: a symlink on the way, or not a regular file."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _openat2(dir_fd: int, rel: str, flags: int) -> int | None:
    """The fd, or None if this kernel (or a seccomp filter) has no openat2."""
    how = _OpenHow(flags, 0, _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS)
    fd = _libc().syscall(_OPENAT2, dir_fd, os.fsencode(rel), ctypes.byref(how), ctypes.sizeof(how))
    if fd >= 0:
        return int(fd)
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EPERM):
        return None
    raise OSError(err, os.strerror(err), rel)


def _parts(rel: str) -> list[str]:
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise PathEscape(f"path '{rel}' must not contain '..' here")
    return parts


def _refuse_link(rel: str, part: str) -> UnsafeFile:
    where = "" if part == rel else f" ({part} is one)"
    return UnsafeFile(
        f"path '{rel}' goes through a symbolic link{where}; the file tools do not follow "
        "links: use the path the link points to"
    )


def _walk(root_fd: int, rel: str, parts: list[str], create: bool = False) -> int:
    """An fd for the folder `parts` below `root_fd`, one O_NOFOLLOW step at a time."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            try:
                child = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(fd, part):
                    raise _refuse_link(rel, part) from None
                raise
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def open_beneath(root: Path, rel: str, flags: int) -> int:
    """Open `rel` below `root` without following any symlink; the caller closes the fd."""
    parts = _parts(rel)
    root_fd = os.open(root, _DIR_FLAGS)
    try:
        if not parts:
            return os.dup(root_fd)
        flags |= os.O_CLOEXEC | os.O_NOFOLLOW
        if use_openat2:
            try:
                fd = _openat2(root_fd, "/".join(parts), flags)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise _refuse_link(rel, _first_link(root_fd, parts) or rel) from None
                raise
            if fd is not None:
                return fd
        parent = _walk(root_fd, rel, parts[:-1])
        try:
            return os.open(parts[-1], flags, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(parent, parts[-1]):
                raise _refuse_link(rel, parts[-1]) from None
            raise
        finally:
            os.close(parent)
    finally:
        os.close(root_fd)


def _first_link(root_fd: int, parts: list[str]) -> str | None:
    path = ""
    for part in parts:
        path = f"{path}/{part}" if path else part
        if _is_link(root_fd, path):
            return path
    return None


def kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISFIFO(mode):
        return "named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device"


def lstat_beneath(root: Path, rel: str) -> os.stat_result | None:
    """What is at `rel` (a symlink itself, not its target); None when nothing is."""
    parts = _parts(rel)
    if not parts:
        return os.stat(root)
    root_fd = os.open(root, _DIR_FLAGS)
    try:
        parent = _walk(root_fd, rel, parts[:-1])
    except (FileNotFoundError, NotADirectoryError):
        return None
    finally:
        os.close(root_fd)
    try:
        return os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None
    finally:
        os.close(parent)


def read_regular(root: Path, rel: str, limit: int) -> bytes:
    """The bytes of a regular file (at most `limit`, else OverflowError)."""
    try:
        fd = open_beneath(root, rel, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # what open(2) says of a socket
            raise UnsafeFile(f"path '{rel}' is a socket; only regular files can be read") from None
        raise
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", rel)
        if not stat.S_ISREG(info.st_mode):
            what = kind(info.st_mode)
            raise UnsafeFile(f"path '{rel}' is a {what}; only regular files can be read")
        if info.st_size > limit:
            raise OverflowError(info.st_size)
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise OverflowError(total)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_atomic(root: Path, rel: str, data: bytes) -> bool:
    """Replace (or create) a regular file by renaming a new one over it; True if it existed.

    Missing folders are made. The old file's permissions are kept.
    """
    parts = _parts(rel)
    if not parts:
        raise IsADirectoryError(errno.EISDIR, "is a directory", rel)
    root_fd = os.open(root, _DIR_FLAGS)
    try:
        parent = _walk(root_fd, rel, parts[:-1], create=True)
    finally:
        os.close(root_fd)
    name = parts[-1]
    try:
        try:
            old = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            old = None
        if old is not None and stat.S_ISDIR(old.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", rel)
        if old is not None and stat.S_ISLNK(old.st_mode):
            raise _refuse_link(rel, rel)
        if old is not None and not stat.S_ISREG(old.st_mode):
            what = kind(old.st_mode)
            raise UnsafeFile(f"path '{rel}' is a {what}; only regular files can be written")
        mode = stat.S_IMODE(old.st_mode) if old is not None else 0o644
        temp = f".{name[:200]}.nexus-{secrets.token_hex(4)}.tmp"
        fd = os.open(
            temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
            dir_fd=parent,
        )  # fmt: skip
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
            os.rename(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=parent)
            raise
        return old is not None
    finally:
        os.close(parent)
