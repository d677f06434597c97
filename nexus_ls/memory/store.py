"""The lessons of a workspace: one TinyDB file, `<state dir>/memory.json`, written by the host.

Every host process of a workspace (a `nexus run`, the language server, `nexus memory add`)
may change it, so every change is a transaction under an exclusive `flock` on a lock file
beside it (the data file itself is replaced, so it cannot carry the lock). Inside one,
TinyDB's writes are held and land at the end as one file written whole, fsynced and renamed
over the old one (`durable.write_durably`): a reader, which never locks, sees the whole
old file or the whole new one, and a `kill -9` mid-write loses nothing it had.

Agents never write it: their sandbox hides the state dir, and they ask the host instead.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Document, Table

from nexus_ls.durable import write_durably
from nexus_ls.errors import NexusError

from .lessons import FIELDS, Lesson

MEMORY_FILE = "memory.json"
LOCK_FILE = "memory.lock"
TABLE = "lessons"
META = "meta"  # one document: the last id given out, and the version of the lessons' texts
Identity = tuple[int, int, int, int]  # device, inode, mtime ns, size: which file we read
LESSON_ID = re.compile(r"[Ll]?(\d{1,9})")


def _identity(path: Path) -> Identity | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


class LessonFile(Storage):
    """TinyDB storage: the whole file parsed once per version of it; writes held until
    `commit` (there is no write outside a transaction)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._cache: tuple[Identity, dict[str, Any]] | None = None
        self._pending: dict[str, Any] | None = None
        self._open = False

    def read(self) -> dict[str, Any] | None:
        if self._pending is not None:
            return self._pending
        identity = _identity(self.path)
        if identity is None:
            return None
        if self._cache is not None and self._cache[0] == identity:
            return self._cache[1]
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError) as exc:
            raise NexusError(
                f"cannot read the workspace memory {self.path}: {exc}; move it away to start "
                "an empty one (`nexus memory export --json` reads nothing from it either)"
            ) from None
        if not isinstance(data, dict):
            raise NexusError(f"the workspace memory {self.path} is not a JSON object; move it away")
        self._cache = (identity, data)
        return data

    @property
    def identity(self) -> Identity | None:
        """Which version of the file the last read saw (None: there is no file)."""
        return self._cache[0] if self._cache is not None else None

    def write(self, data: dict[str, Any]) -> None:
        if not self._open:
            raise RuntimeError("the memory is written only inside MemoryStore.transaction()")
        self._pending = data

    def begin(self) -> None:
        self._open, self._pending = True, None

    def commit(self) -> None:
        pending, self._pending, self._open = self._pending, None, False
        if pending is None:
            return
        self._cache = None  # whatever happens below, the next read looks at the disk
        write_durably(self.path, json.dumps(pending, ensure_ascii=False).encode("utf-8"))
        identity = _identity(self.path)
        if identity is not None:
            self._cache = (identity, pending)

    def rollback(self) -> None:
        # TinyDB changed the cached documents in place: read them again.
        self._pending, self._open, self._cache = None, False, None

    def close(self) -> None:
        pass


class Transaction:
    """The lessons while the memory's lock is held; what it changes is written at the end."""

    def __init__(self, table: Table, meta: Table, file: LessonFile) -> None:
        self.table, self.meta, self.file = table, meta, file

    def _raw(self) -> dict[str, Any]:
        """The lessons' documents as stored (not to be changed here: TinyDB writes)."""
        docs = (self.file.read() or {}).get(TABLE)
        return docs if isinstance(docs, dict) else {}

    def all(self) -> list[Lesson]:
        return [lesson for doc in self.table.all() if (lesson := Lesson.from_json(doc))]

    def get(self, lesson_id: str) -> Lesson | None:
        number = lesson_number(lesson_id)
        doc = self.table.get(doc_id=number) if number is not None else None
        return Lesson.from_json(cast(dict, doc)) if doc is not None else None

    def by_key(self, key: str) -> Lesson | None:
        if not key:
            return None
        # A plain scan: TinyDB's Query costs ten times as much per document.
        for doc in self._raw().values():
            if isinstance(doc, dict) and doc.get("key") == key:
                return Lesson.from_json(doc)
        return None

    def insert(self, fields: dict[str, Any]) -> Lesson:
        """A new lesson with the next id (ids are never given out twice, even forgotten)."""
        state = self._meta()
        numbers = [int(key) for key in self._raw() if key.isdigit()]
        number = max([state.get("last_id", 0), *numbers]) + 1
        lesson = Lesson(**{**fields, "id": f"L{number}"})
        self.table.insert(Document(lesson.to_json(), doc_id=number))
        self._set_meta(last_id=number, texts=state.get("texts", 0) + 1)
        return lesson

    def update(self, lesson: Lesson, *, text_changed: bool = False) -> None:
        number = lesson_number(lesson.id)
        if number is None or not self.table.contains(doc_id=number):
            raise NexusError(f"there is no lesson {lesson.id} (forgotten meanwhile?)")
        self.table.update(lesson.to_json(), doc_ids=[number])
        if text_changed:
            self._set_meta(texts=self._meta().get("texts", 0) + 1)

    def update_many(self, lessons: list[Lesson]) -> None:
        """Several lessons changed at once: one pass over the table, not one each."""
        by_id = {lesson.id: lesson.to_json() for lesson in lessons}
        numbers = [n for lesson in lessons if (n := lesson_number(lesson.id)) is not None]
        self.table.update(lambda doc: doc.update(by_id[doc["id"]]), doc_ids=numbers)

    def remove(self, lesson_id: str) -> None:
        number = lesson_number(lesson_id)
        if number is not None and self.table.contains(doc_id=number):
            self.table.remove(doc_ids=[number])
            state = self._meta()
            self._set_meta(last_id=max(state.get("last_id", 0), number),
                           texts=state.get("texts", 0) + 1)  # fmt: skip

    def _meta(self) -> dict[str, Any]:
        doc = self.meta.get(doc_id=1)
        return dict(cast(dict, doc)) if doc is not None else {}

    def _set_meta(self, **fields: int) -> None:
        if self.meta.contains(doc_id=1):
            self.meta.update(fields, doc_ids=[1])
        else:
            self.meta.insert(Document(fields, doc_id=1))


class MemoryStore:
    """One workspace's lessons; safe to share between threads and between processes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(LOCK_FILE)
        self._lock = threading.RLock()
        self._db = TinyDB(str(self.path), storage=LessonFile)
        self._file = cast(LessonFile, self._db.storage)
        self._lessons: tuple[Identity | None, list[Lesson], int] | None = None

    @classmethod
    def for_state_dir(cls, state_dir: Path) -> MemoryStore:
        state_dir.mkdir(parents=True, exist_ok=True)
        return cls(state_dir / MEMORY_FILE)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Hold the workspace's memory lock (other processes wait); the changes made inside
        land at once at the end, or not at all if it raises."""
        with self._lock:
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise NexusError(f"cannot lock the workspace memory: {exc}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._file.begin()
                try:
                    yield Transaction(self._table(TABLE), self._table(META), self._file)
                    self._file.commit()
                except BaseException:
                    self._file.rollback()
                    raise
            finally:
                os.close(fd)  # and with it the lock

    def lessons(self) -> list[Lesson]:
        """Every stored lesson, oldest first; parsed again only when the file changed."""
        with self._lock:
            data = self._file.read()
            identity = self._file.identity if data is not None else None
            if self._lessons is not None and self._lessons[0] == identity and data is not None:
                return list(self._lessons[1])
            docs = (data or {}).get(TABLE) or {}
            found = [Lesson.from_json(doc) for doc in docs.values() if isinstance(doc, dict)]
            lessons = [lesson for lesson in found if lesson is not None]
            lessons.sort(key=lambda lesson: lesson_number(lesson.id) or 0)
            self._lessons = (identity, lessons, len(docs) - len(lessons))
            return list(lessons)

    @property
    def skipped(self) -> int:
        """Stored documents that are not lessons (a hand-edited file), in the last read."""
        return self._lessons[2] if self._lessons is not None else 0

    def texts_version(self) -> tuple[str, int]:
        """Changes whenever a lesson's text or tags change, is added or forgotten (not with
        weights or uses): what a text index built from the lessons depends on."""
        with self._lock:
            data = self._file.read() or {}
            meta = (data.get(META) or {}).get("1") or {}
            return (str(self.path), int(meta.get("texts", 0)))

    def _table(self, name: str) -> Table:
        return self._db.table(name, cache_size=0)


def lesson_number(lesson_id: str) -> int | None:
    """12 for `L12` (or `l12`, or `12`); None for anything else."""
    match = LESSON_ID.fullmatch(lesson_id.strip()) if isinstance(lesson_id, str) else None
    return int(match.group(1)) if match else None


__all__ = ["FIELDS", "MEMORY_FILE", "MemoryStore", "Transaction", "lesson_number"]
