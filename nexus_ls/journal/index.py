"""A SQLite index beside the journal, so a search does not read the whole file.

The JSON-lines file stays the source of truth and the only thing an append touches. The index
keeps, for each line, where it is in the file and the fields searches filter on (run, level,
category, time), and a trigram full-text index over its message and data, so a search at a
million events costs milliseconds and a few MiB instead of parsing the file into memory.

Whichever reader comes first brings the index up to date from the byte offset it stored; a
writer never waits for it. An index that is missing, damaged, of another schema or made from
another file (moved, truncated, rewritten) is rebuilt from the log: it holds nothing the log
cannot give again. Where no index file can be written at all, one is built in memory.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .events import LEVELS
from .lines import well_formed

__all__ = ["JournalIndex", "Query", "StaleIndex", "has_text", "index_path", "searchable_text"]

SCHEMA = 1
CHUNK = 8 * 1024 * 1024  # bytes of the log parsed per transaction: bounds a reader's memory
HEAD = 4096  # bytes at the start of the log that identify it
TAIL = 256  # bytes before the stored offset that must still be there
MAX_TRIGRAMS = 12  # of a needle, sent to the full-text index (the rest is checked in Python)
WAIT_MS = 60_000  # for another process that is filling the index
RANK: dict[str, int] = {name: rank for rank, name in enumerate(LEVELS)}
HIGHEST = "\U0010ffff"  # sorts after every other character: the end of a prefix range
_to_json = json.JSONEncoder(ensure_ascii=False).encode

TABLES = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID",
    "CREATE TABLE events (line INTEGER PRIMARY KEY, start INTEGER NOT NULL, "
    "size INTEGER NOT NULL, ts TEXT, rank INTEGER NOT NULL, category TEXT NOT NULL, run TEXT)",
    "CREATE INDEX events_ts ON events (ts)",
    "CREATE INDEX events_run ON events (run, ts)",
    "CREATE INDEX events_category ON events (category, ts)",
    "CREATE INDEX events_rank ON events (rank, ts)",
    # Contentless, without positions: candidates only; each is checked against its line.
    "CREATE VIRTUAL TABLE words USING fts5 "
    "(text, content='', detail=none, tokenize='trigram case_sensitive 1')",
)


def index_path(journal: Path) -> Path:
    """Where the index of a journal file lives: beside it."""
    return journal.with_name(journal.name + ".index")


def searchable_text(event: dict[str, Any]) -> str:
    """What `grep` looks in: the message and the data as JSON, lower-cased the same way
    for the index and for the check, so the index can only over-match, never miss."""
    text = f"{event.get('message', '')}\n{_to_json(event.get('data'))}".lower()
    return _bindable(text)


def has_text(event: dict[str, Any], needle: str) -> bool:
    """Whether the lower-cased needle is in the event's message or its data as JSON."""
    message = event.get("message")
    if isinstance(message, str) and needle in message.lower():
        return True
    return "data" in event and needle in _to_json(event["data"]).lower()


def _bindable(text: str) -> str:
    """Text SQLite can hold whole. A lone surrogate (bytes decoded with surrogateescape)
    cannot be sent as UTF-8, and the trigram index stops at a NUL: each is replaced by
    other characters, the same way in what is indexed and what is asked, so every
    substring stays a substring (the index may over-match; each line is checked)."""
    if "\x00" in text:
        text = text.replace("\x00", "\x01")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _field(value: Any) -> Any:
    return _bindable(value) if isinstance(value, str) else value


class StaleIndex(Exception):
    """The file read is not the one indexed (it was replaced during the search)."""


@dataclass(frozen=True)
class Query:
    """A search in the index's terms; `needle` is lower-cased, `since` a journal timestamp."""

    run: str | None = None
    rank: int | None = None
    category: str | None = None
    needle: str | None = None
    since: str | None = None
    after: int | None = None  # only lines after this one (a follower's mark)
    until: int | None = None  # only lines up to this one (what a follower saw first)

    def matches(self, event: dict[str, Any]) -> bool:
        """The same test in Python, on the event as read from the file: the index only
        narrows the lines down, and a line's bytes are what counts."""
        run, ts = event.get("run"), event.get("ts")
        return (
            (self.run is None or (isinstance(run, str) and run.startswith(self.run)))
            and (self.rank is None or RANK.get(str(event.get("level")), -1) >= self.rank)
            and (self.category is None or event.get("category") == self.category)
            and (self.since is None or (isinstance(ts, str) and ts >= self.since))
            and (self.needle is None or has_text(event, self.needle))
        )

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition on `events` (aliased `e`) and its parameters."""
        parts, values = ["1"], list[Any]()
        if self.run is not None:
            parts.append("e.run >= ? AND e.run < ?")
            values += [_bindable(self.run), _bindable(self.run) + HIGHEST]
        if self.rank is not None:
            parts.append("e.rank >= ?")
            values.append(self.rank)
        if self.category is not None:
            parts.append("e.category = ?")
            values.append(self.category)
        if self.since is not None:
            parts.append("e.ts >= ?")
            values.append(self.since)
        if self.after is not None:
            parts.append("e.line > ?")
            values.append(self.after)
        if self.until is not None:
            parts.append("e.line <= ?")
            values.append(self.until)
        trigrams = _trigrams(self.needle)
        if trigrams:
            match = " AND ".join('"' + gram.replace('"', '""') + '"' for gram in trigrams)
            # The bound inside too: the trigram index then reads only the lines after it.
            above = f" AND rowid > {int(self.after)}" if self.after is not None else ""
            parts.append(f"e.line IN (SELECT rowid FROM words WHERE words MATCH ?{above})")
            values.append(match)
        return " AND ".join(parts), values


def _trigrams(needle: str | None) -> list[str]:
    """Distinct trigrams of the needle, spread over it; none for a needle under 3 characters,
    which the index cannot narrow (those lines are checked one by one)."""
    if not needle or len(needle) < 3:
        return []
    needle = _bindable(needle)
    grams = list(dict.fromkeys(needle[i : i + 3] for i in range(len(needle) - 2)))
    if len(grams) <= MAX_TRIGRAMS:
        return grams
    step = (len(grams) - 1) / (MAX_TRIGRAMS - 1)
    return [grams[round(i * step)] for i in range(MAX_TRIGRAMS)]


class JournalIndex:
    """One connection to a journal's index, for one thread: refresh it, then ask for lines."""

    def __init__(self, journal: Path, *, in_memory: bool = False) -> None:
        self.journal = Path(journal)
        self.path = index_path(self.journal)
        self.db = self._open(":memory:") if in_memory else self._connect()

    # Opening -----------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        for _ in (1, 2):
            try:
                return self._open(str(self.path))
            except sqlite3.OperationalError:
                break  # cannot be opened or written here (a read-only state directory)
            except sqlite3.DatabaseError:
                # Not a database, or a damaged one: it holds nothing the log cannot give.
                self.remove()
        return self._open(":memory:")

    @staticmethod
    def _open(where: str) -> sqlite3.Connection:
        db = sqlite3.connect(where, timeout=WAIT_MS / 1000, isolation_level=None)
        try:
            if where != ":memory:":
                db.execute("PRAGMA journal_mode = WAL")  # readers never wait for a filler
                db.execute("PRAGMA synchronous = NORMAL")  # a lost tail costs only a re-read
            if _schema(db) != SCHEMA:
                _create(db)
        except BaseException:
            db.close()
            raise
        return db

    def remove(self) -> None:
        """Delete the index file (a damaged one); the next reader builds it again."""
        for suffix in ("", "-wal", "-shm"):
            with suppress(OSError):  # gone already, or in a folder it cannot be removed from
                os.unlink(f"{self.path}{suffix}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> JournalIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Filling -----------------------------------------------------------------------------

    def refresh(self) -> int:
        """Index the log's complete lines not indexed yet; return how many lines were read."""
        read = 0
        while True:
            done, count = self._fill_chunk()
            read += count
            if done:
                return read

    def _fill_chunk(self) -> tuple[bool, int]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")  # one filler at a time, across processes
        try:
            done, count = self._fill_locked()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return done, count

    def _fill_locked(self) -> tuple[bool, int]:
        meta = dict(self.db.execute("SELECT key, value FROM meta"))
        try:
            handle = open(self.journal, "rb")  # noqa: SIM115 (closed by the `with` below)
        except FileNotFoundError:
            if meta.get("offset"):
                self._clear()
            return True, 0
        with handle:
            stat = os.fstat(handle.fileno())
            offset = int(meta.get("offset") or 0)
            if offset and not self._same_log(meta, handle, stat, offset):
                self._clear()
                meta, offset = {}, 0
            if stat.st_size <= offset:
                return True, 0
            handle.seek(offset)
            data = handle.read(CHUNK)
            end = data.rfind(b"\n")
            while end < 0 and len(data) < stat.st_size - offset:
                more = handle.read(CHUNK)  # one line longer than a chunk
                if not more:
                    break
                data += more
                end = data.rfind(b"\n")
            if end < 0:
                return True, 0  # a line still being written
            lines = data[: end + 1].split(b"\n")[:-1]
            number = int(meta.get("lines") or 0)
            corrupt = int(meta.get("corrupt") or 0)
            number, corrupt = self._insert(lines, offset, number, corrupt)
            new_offset = offset + end + 1
            head = _head(handle, new_offset)
            tail = _tail(handle, new_offset)
        facts = {
            "dev": stat.st_dev,
            "ino": stat.st_ino,
            "offset": new_offset,
            "lines": number,
            "corrupt": corrupt,
            "head": head,
            "tail": tail,
        }
        self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", facts.items())
        return new_offset >= stat.st_size, len(lines)

    def _same_log(
        self, meta: dict[str, Any], handle: Any, stat: os.stat_result, offset: int
    ) -> bool:
        """Whether the file is still the one indexed: same inode, not shorter, and the bytes
        at its start and just before the offset unchanged (a rewrite in place changes them)."""
        return (
            (meta.get("dev"), meta.get("ino")) == (stat.st_dev, stat.st_ino)
            and stat.st_size >= offset
            and meta.get("head") == _head(handle, offset)
            and meta.get("tail") == _tail(handle, offset)
        )

    def _insert(
        self, lines: list[bytes], offset: int, number: int, corrupt: int
    ) -> tuple[int, int]:
        rows: list[tuple[Any, ...]] = []
        texts: list[tuple[int, str]] = []
        start = offset
        for raw in lines:
            number += 1
            size = len(raw)
            if raw.strip():
                event = _decode(raw)
                if event is None:
                    corrupt += 1
                else:
                    rank = RANK.get(event["level"], -1)
                    fields = (event.get("ts"), rank, event["category"], event.get("run"))
                    rows.append((number, start, size, *map(_field, fields)))
                    texts.append((number, searchable_text(event)))
            start += size + 1
        self.db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        self.db.executemany("INSERT INTO words (rowid, text) VALUES (?, ?)", texts)
        return number, corrupt

    def _clear(self) -> None:
        self.db.execute("DELETE FROM events")
        self.db.execute("INSERT INTO words (words) VALUES ('delete-all')")
        self.db.execute("DELETE FROM meta WHERE key != 'schema'")

    # Asking ------------------------------------------------------------------------------

    @property
    def corrupt(self) -> int:
        """Complete lines of the log that are not well-formed events, skipped by every search."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'corrupt'").fetchone()
        return int(row[0]) if row else 0

    def older_since(self, query: Query, line: int, ts: str) -> bool:
        """Whether a line at or before `line` that the query's filters (but its needle)
        accept has a timestamp at or after `ts`: then the newest matches cannot be told
        from the lines after `line` alone."""
        bare = replace(query, needle=None, after=None, until=query.until, since=None)
        where, values = bare.where()
        sql = f"SELECT 1 FROM events AS e WHERE {where} AND e.line <= ? AND e.ts >= ? LIMIT 1"
        return self.db.execute(sql, [*values, line, ts]).fetchone() is not None

    @property
    def identity(self) -> tuple[int, int] | None:
        """(device, inode) of the file indexed; None before the first line."""
        rows = dict(self.db.execute("SELECT key, value FROM meta WHERE key IN ('dev', 'ino')"))
        return (int(rows["dev"]), int(rows["ino"])) if len(rows) == 2 else None

    @property
    def last_line(self) -> int:
        """The number of the last line indexed (lines count from 1; 0 for none)."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'lines'").fetchone()
        return int(row[0]) if row else 0

    def spans(
        self,
        query: Query,
        *,
        newest_first: bool = False,
        by_line: bool = False,
        words: bool = True,
        limit: int | None = None,
    ) -> Iterator[tuple[int, int, int]]:
        """(line, start, size) of each line that may match, in time order (or file order);
        without `words` the needle is left to the caller, with `limit` only that many."""
        where, values = (query if words else replace(query, needle=None)).where()
        way = "DESC" if newest_first else "ASC"
        order = f"e.line {way}" if by_line else f"e.ts {way}, e.line {way}"
        sql = f"SELECT e.line, e.start, e.size FROM events AS e WHERE {where} ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with closing(self.db.execute(sql, values)) as cursor:
            while rows := cursor.fetchmany(1024):
                yield from rows


def _schema(db: sqlite3.Connection) -> int | None:
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
        return None
    row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    return row[0] if row else None


def _create(db: sqlite3.Connection) -> None:
    """Make the tables in a new index file; once, whoever gets there first."""
    db.execute("BEGIN IMMEDIATE")
    try:
        found = _schema(db)
        if found is None:
            for statement in TABLES:
                db.execute(statement)
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA,))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    if found not in (None, SCHEMA):
        raise sqlite3.DatabaseError(f"a journal index of schema {found}, not {SCHEMA}")


def _decode(raw: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(raw)
    except ValueError:
        return None
    return event if isinstance(event, dict) and well_formed(event) else None


def _head(handle: Any, offset: int) -> bytes:
    """The log's first bytes, up to `offset`: they never change in an append-only log, so
    other bytes there mean another file under the same name."""
    return os.pread(handle.fileno(), min(HEAD, offset), 0)


def _tail(handle: Any, offset: int) -> bytes:
    """The bytes just before `offset`, which a rewrite in place would change too."""
    start = max(0, offset - TAIL)
    return os.pread(handle.fileno(), offset - start, start)
