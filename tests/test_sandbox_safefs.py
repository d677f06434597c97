"""The file tools' I/O cannot be turned against files outside the worktree.

Each test runs twice: through openat2 (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) and through
the per-component O_NOFOLLOW walk used where the kernel has no openat2.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nexus_ls.sandbox import safefs
from nexus_ls.sandbox.safefs import UnsafeFile, lstat_beneath, read_regular, write_atomic
from nexus_ls.tools import ToolContext, call_tool
from nexus_ls.tools import search as search_tool


@pytest.fixture(params=["openat2", "walk"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    saved = safefs.use_openat2
    safefs.use_openat2 = request.param == "openat2"
    root = tmp_path / "wt"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("inside\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "user.txt").write_text("the user's\n")
    yield root
    safefs.use_openat2 = saved


def outside(root: Path) -> Path:
    return root.parent / "outside"


def test_reads_a_regular_file(root: Path) -> None:
    assert read_regular(root, "a.txt", 100) == b"inside\n"


@pytest.mark.parametrize("rel", ["link.txt", "linkdir/a.txt", "sub/../linkdir/a.txt"])
def test_no_symlink_is_followed_even_inside(root: Path, rel: str) -> None:
    os.symlink("a.txt", root / "link.txt")
    os.symlink(".", root / "linkdir")
    with pytest.raises(UnsafeFile, match="symbolic link"):
        read_regular(root, os.path.normpath(rel), 100)


def test_symlink_in_a_middle_component_is_refused_for_writes(root: Path) -> None:
    os.symlink(outside(root), root / "out")
    with pytest.raises(UnsafeFile, match="symbolic link"):
        write_atomic(root, "out/user.txt", b"owned\n")
    assert (outside(root) / "user.txt").read_text() == "the user's\n"


def test_final_symlink_is_not_written_through(root: Path) -> None:
    os.symlink(outside(root) / "user.txt", root / "innocent.txt")
    with pytest.raises(UnsafeFile):
        write_atomic(root, "innocent.txt", b"owned\n")
    assert (outside(root) / "user.txt").read_text() == "the user's\n"
    assert os.path.islink(root / "innocent.txt")


def test_hard_link_is_replaced_not_written_through(root: Path) -> None:
    os.link(outside(root) / "user.txt", root / "hard.txt")
    assert write_atomic(root, "hard.txt", b"new\n") is True
    assert (outside(root) / "user.txt").read_text() == "the user's\n"
    assert (root / "hard.txt").read_text() == "new\n"
    assert os.stat(root / "hard.txt").st_nlink == 1


def test_write_keeps_the_mode_and_makes_folders(root: Path) -> None:
    os.chmod(root / "a.txt", 0o751)
    write_atomic(root, "a.txt", b"x\n")
    assert stat.S_IMODE(os.stat(root / "a.txt").st_mode) == 0o751
    assert write_atomic(root, "new/deep/f.txt", b"y\n") is False
    assert (root / "new/deep/f.txt").read_text() == "y\n"
    assert sorted(os.listdir(root)) == ["a.txt", "new", "sub"]  # no temp file left


def _in_thread(fn, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    outcome: list[object] = []

    def target() -> None:
        try:
            outcome.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the call blocked"
    return outcome[0]


def test_fifo_is_refused_at_once_for_read_and_write(root: Path) -> None:
    os.mkfifo(root / "pipe")
    error = _in_thread(lambda: read_regular(root, "pipe", 100))
    assert isinstance(error, UnsafeFile) and "FIFO" in str(error)
    error = _in_thread(lambda: write_atomic(root, "pipe", b"x"))
    assert isinstance(error, UnsafeFile)
    assert stat.S_ISFIFO(os.lstat(root / "pipe").st_mode)


def test_socket_is_refused(root: Path) -> None:
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(root / "sock"))
        with pytest.raises(UnsafeFile, match="socket"):
            read_regular(root, "sock", 100)


def test_device_is_refused(root: Path) -> None:
    try:
        os.mknod(root / "zero", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("making a device node needs CAP_MKNOD")
    error = _in_thread(lambda: read_regular(root, "zero", 1 << 20))
    assert isinstance(error, UnsafeFile) and "device" in str(error)


def test_reads_are_bounded(root: Path) -> None:
    (root / "big").write_bytes(b"x" * 1000)
    with pytest.raises(OverflowError):
        read_regular(root, "big", 999)


def test_lstat_sees_the_link_itself(root: Path) -> None:
    os.symlink("a.txt", root / "link")
    info = lstat_beneath(root, "link")
    assert info is not None and stat.S_ISLNK(info.st_mode)
    assert lstat_beneath(root, "missing/x") is None


def test_symlink_swap_race_never_lands_outside(root: Path) -> None:
    """A process flips `sub` between a folder and a link to outside while writes go on."""
    target = outside(root)
    stop = threading.Event()

    def flip() -> None:
        sub, real = root / "sub", root / "sub-real"
        while not stop.is_set():
            try:
                sub.rename(real)
                os.symlink(target, sub)  # sub -> outside
                os.unlink(sub)
                real.rename(sub)  # a real folder again
            except OSError:  # a write made `sub` meanwhile: put things back
                restore(sub, real)

    def restore(sub: Path, real: Path) -> None:
        while real.is_dir():
            with contextlib.suppress(OSError):
                if sub.is_symlink():
                    sub.unlink()
                shutil.rmtree(sub, ignore_errors=True)
                real.rename(sub)

    flipper = threading.Thread(target=flip, daemon=True)
    flipper.start()
    ends = time.monotonic() + 1.0
    writes = 0
    try:
        while time.monotonic() < ends:
            try:
                write_atomic(root, "sub/user.txt", b"owned\n")
                writes += 1
            except (OSError, UnsafeFile):
                pass
    finally:
        stop.set()
        flipper.join()
    assert (target / "user.txt").read_text() == "the user's\n"
    assert sorted(os.listdir(target)) == ["user.txt"]


def test_read_file_tool_on_a_fifo_answers_with_an_error(root: Path) -> None:
    os.mkfifo(root / "pipe")
    ctx = ToolContext(root=root)
    result = _in_thread(lambda: call_tool(ctx, "read_file", {"path": "pipe"}))
    assert not result.ok and "FIFO" in result.output  # type: ignore[attr-defined]


def test_catastrophic_search_is_stopped_within_its_budget(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_tool, "SEARCH_SECONDS", 0.5)
    (root / "slow.txt").write_text("a" * 40 + "b\n")
    ctx = ToolContext(root=root)
    started = time.monotonic()
    result = call_tool(ctx, "search", {"pattern": "(a|aa)+$"})  # Python's re: minutes
    assert time.monotonic() - started < 3
    assert result.ok and result.data["timed_out"] is True
    assert "search stopped after 0.5 s" in result.output


def test_search_skips_fifos_and_links(root: Path) -> None:
    os.mkfifo(root / "pipe")
    os.symlink(outside(root) / "user.txt", root / "link.txt")
    ctx = ToolContext(root=root)
    result = _in_thread(lambda: call_tool(ctx, "search", {"pattern": "user|inside"}))
    assert result.ok and "a.txt:1: inside" in result.output  # type: ignore[attr-defined]
    assert "the user's" not in result.output  # type: ignore[attr-defined]
