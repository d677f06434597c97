"""Messages between a run's host (the supervisor) and its agent process.

One JSON object per line. Down, on the agent's stdin: a `start` message, later
perhaps `cancel`, a `reply` to each `request`, and `note`s (`{"kind", "text", "data"}`:
what the host tells the run between turns, e.g. a message from another agent). Up, on
the agent's protocol stream:
`event` messages (journal events without id/run, which the host adds), `request`s (the
agent asks, the host answers: `{"id", "kind", "body"}`, answered by `{"id", "body"}` or
`{"id", "error"}`; kind `approval` asks whether a command may run) and one final
`result`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from typing import IO, Any

START, CANCEL, EVENT, RESULT = "start", "cancel", "event", "result"
REQUEST, REPLY, NOTE = "request", "reply", "note"


def encode(message: dict[str, Any]) -> bytes:
    """One message as one line. ASCII JSON: bytes that are not UTF-8 (a file's, decoded with
    surrogateescape) travel as `\\udcXX` escapes instead of failing to encode."""
    return (json.dumps(message, default=str) + "\n").encode("ascii")


def decode(line: bytes | str) -> dict[str, Any] | None:
    """A message, or None for a line that is not one (stray output must not kill a run)."""
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return message if isinstance(message, dict) and "type" in message else None


class Channel:
    """Writes messages from several threads without interleaving lines."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        data = encode(message)
        with self._lock:
            self._stream.write(data)
            self._stream.flush()


def read_lines(fd: int) -> Iterator[bytes]:
    """Lines from a raw file descriptor.

    Unbuffered on purpose: a thread blocked in `sys.stdin.buffer` holds the buffer's lock,
    and interpreter shutdown then aborts the process (SIGABRT) while waiting for it.
    """
    pending = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            if pending:
                yield pending
            return
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            yield line
