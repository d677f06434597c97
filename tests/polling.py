"""Waiting on processes and ports in tests: polls with a deadline, never a bare sleep."""

from __future__ import annotations

import os
import socket
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path


def wait_until(condition: Callable[[], bool], limit: float = 20.0) -> bool:
    """Poll `condition` until it holds; the limit only stops a broken test from hanging."""
    pause = threading.Event()
    for _ in range(int(limit / 0.02)):
        if condition():
            return True
        pause.wait(0.02)
    return condition()


def alive(pid: int) -> bool:
    """Whether `pid` is still running (a zombie waiting to be reaped counts as gone)."""
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        return state not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(port: int, path: str = "/") -> bool:
    """Whether something on the host's loopback answers HTTP on `port`."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2):
            return True
    except OSError:
        return False
