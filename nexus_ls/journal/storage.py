"""An append-only TinyDB storage over a JSON-lines file.

TinyDB's stock JSONStorage rewrites the whole file on every insert, so a journal that grows for
months gets slower with every event. Here an append is one locked `write(2)` of one line to a
file opened with O_APPEND: it costs the same at a hundred events and at a million, several
processes can append at once without losing or tearing a line, and an event is in the kernel's
page cache (it survives `kill -9` of the writer) before `append` returns.

`Journal` searches through the SQLite index (`index.py`), not through `read`, which is
TinyDB's view of the file. Readers never lock. They parse only complete lines and remember how
far they got, so a reader that polls pays only for what is new. A line still being written (no
newline yet) waits for the next read; a line that is not a JSON object is skipped and counted,
never the end of reading.
"""

from __future__ import annotations

import fcntl
import gc
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from tinydb.storages import Storage

from .lines import AppendOnlyError, StoredEvent, decode_line, encode_line

__all__ = ["TABLE", "AppendOnlyError", "JsonLinesStorage", "paused_gc"]

TABLE = "events"
READ_CHUNK = 16 * 1024 * 1024


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cycle collector while building many acyclic objects (events, query results).

    They hold no reference cycles, so the collector finds nothing; left on, it re-scans a heap
    of a million events again and again and makes a large read or query several times slower.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


class JsonLinesStorage(Storage):
    """One table, `events`, one event per line; document ids are line numbers (from 1)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durable: bool = False,
        accept: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> None:
        """`durable=True` also fsyncs each append: it then survives a power cut, at ~ms cost.
        `accept` says which documents to keep; the others are skipped and counted."""
        self.path = Path(path)
        self.accept = accept
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.durable = durable
        self.corrupt = 0
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._fd: int | None = self._open()
        self._reset(None)

    # Reading -----------------------------------------------------------------------------

    def read(self) -> dict[str, dict[str, Any]]:
        """All events so far, as `{"events": {"1": event, ...}}`; parses only new lines."""
        with self._read_lock:
            self._refresh()
            return {TABLE: dict(self._docs)}

    def _reset(self, identity: tuple[int, int] | None) -> None:
        self._identity = identity
        self._docs: dict[str, StoredEvent] = {}
        self._ids: list[int] = []
        self._offset = 0
        self._lines = 0
        self.corrupt = 0

    def _refresh(self) -> None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self._reset(None)
            return
        identity = (stat.st_dev, stat.st_ino)
        if identity != self._identity or stat.st_size < self._offset:
            self._reset(identity)  # replaced or truncated: start over
        if stat.st_size == self._offset:
            return
        with paused_gc():
            self._read_new_lines()

    def _read_new_lines(self) -> None:
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            pending = b""
            while chunk := handle.read(READ_CHUNK):
                data = pending + chunk
                end = data.rfind(b"\n")
                if end < 0:
                    pending = data
                    continue
                self._parse(data[:end].split(b"\n"))
                self._offset += end + 1
                pending = data[end + 1 :]

    def _parse(self, lines: list[bytes]) -> None:
        docs, ids, number = self._docs, self._ids, self._lines
        for line in lines:
            number += 1
            if not line.strip():
                continue
            doc = decode_line(line)
            if doc is None or (self.accept is not None and not self.accept(doc)):
                self.corrupt += 1
                continue
            docs[str(number)] = doc
            ids.append(number)
        self._lines = number

    # Writing -----------------------------------------------------------------------------

    def append(self, doc: Mapping[str, Any]) -> None:
        """Append one event: one locked write of one full line; in the OS when this returns."""
        self._append_bytes(encode_line(doc))

    def write(self, data: Mapping[str, Mapping[str, Any]]) -> None:
        """TinyDB's write: append documents TinyDB added; refuse to change or drop any other."""
        unknown = sorted(set(data) - {TABLE})
        if unknown:
            raise AppendOnlyError(f"the journal has one table, {TABLE!r}; cannot add {unknown}")
        table = data.get(TABLE, {})
        new: list[tuple[int, Mapping[str, Any]]] = []
        with self._read_lock:
            known, last = self._docs, (self._ids[-1] if self._ids else 0)
            kept = 0
            for key, doc in table.items():
                old = known.get(str(key))
                if old is None:
                    if int(key) <= last:
                        raise AppendOnlyError(f"cannot write event {key}: its line is taken")
                    new.append((int(key), doc))
                elif doc is not old and doc != old:
                    raise AppendOnlyError(f"cannot change event {key}: the journal is append-only")
                else:
                    kept += 1
            if kept != len(known):
                raise AppendOnlyError("cannot remove events: the journal is append-only")
        if new:
            new.sort(key=lambda item: item[0])
            self._append_bytes(b"".join(encode_line(doc) for _, doc in new))

    def close(self) -> None:
        with self._write_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __del__(self) -> None:
        # A dropped journal must not leak its descriptor in a long-running server.
        with suppress(Exception):
            self.close()

    def _open(self) -> int:
        return os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def _append_bytes(self, payload: bytes) -> None:
        with self._write_lock:
            while True:
                if self._fd is None:
                    self._fd = self._open()
                fd = self._fd
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    stat = os.fstat(fd)
                    if not self._is_current(stat):
                        # The file was moved or deleted under us: reopen rather than write
                        # into an inode nobody will read.
                        os.close(fd)
                        self._fd = None
                        continue
                    if stat.st_size and os.pread(fd, 1, stat.st_size - 1) != b"\n":
                        # A writer died mid-line: end that line so ours stays whole.
                        payload = b"\n" + payload
                    _write_all(fd, payload)
                    if self.durable:
                        os.fsync(fd)
                    return
                finally:
                    if self._fd is not None:
                        fcntl.flock(fd, fcntl.LOCK_UN)

    def _is_current(self, stat: os.stat_result) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        return (on_disk.st_dev, on_disk.st_ino) == (stat.st_dev, stat.st_ino)


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]
