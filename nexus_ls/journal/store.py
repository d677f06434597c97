"""A workspace's journal: where every event is written, searched and followed.

`Journal` is the one door to the file: it validates and redacts each event before the
append-only storage sees it, so no caller can write an event that readers cannot parse or one
that carries a secret. Searches go through the SQLite index beside the file (`index.py`), so
they read only the lines that match and hold none of the journal in memory.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, suppress
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from tinydb import TinyDB

from nexus_ls.errors import NexusError

from .events import FIELDS, make_event
from .filters import event_query, parse_since
from .index import JournalIndex, Query, StaleIndex, index_path
from .lines import well_formed
from .redact import Redactor
from .storage import JsonLinesStorage

__all__ = ["Journal", "parse_since"]

JOURNAL_FILE = "journal.jsonl"
WINDOW = 50  # lines per wanted match in the first window a needle is looked for in


class Journal:
    """Append, search and follow one journal file; safe to share between threads and processes."""

    def __init__(self, path: Path, redactor: Redactor | None = None) -> None:
        """Without a redactor, the secrets of this process's environment are redacted."""
        self.path = Path(path)
        self.redactor = redactor if redactor is not None else Redactor()
        try:
            self._db = TinyDB(self.path, storage=JsonLinesStorage, accept=well_formed)
        except OSError as exc:
            raise NexusError(
                f"cannot open the journal {self.path}: {exc.strerror}; it must be a file "
                "NEXUS can read and append to (move whatever is there away)"
            ) from None
        self.storage = cast(JsonLinesStorage, self._db.storage)
        self.skipped = 0  # lines that are not well-formed events, as of the last search

    @classmethod
    def for_state_dir(cls, state_dir: Path) -> Journal:
        """The journal of the workspace whose state lives in `state_dir`."""
        state_dir.mkdir(parents=True, exist_ok=True)
        return cls(state_dir / JOURNAL_FILE)

    def append(self, event: Mapping[str, Any]) -> dict:
        """Validate, fill in `id` and `ts` if missing, redact and append; return what was stored."""
        unknown = sorted(set(event) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown event fields {unknown}: use only {', '.join(FIELDS)}")
        missing = [name for name in ("level", "category", "message") if event.get(name) is None]
        if missing:
            raise ValueError(f"event is missing {', '.join(missing)}")
        scrub = self.redactor.scrub
        # Scrub before make_event (which may shorten the message and cut a secret in two) and
        # after it (which turns unknown objects into strings that may hold one).
        stored = make_event(
            event["level"],
            event["category"],
            scrub(str(event["message"])),
            run=event.get("run"),
            agent=event.get("agent"),
            step=event.get("step"),
            data=scrub(event.get("data")),
            ts=event.get("ts"),
            id=event.get("id"),
        )
        stored = scrub(stored)
        self.storage.append(stored)
        return cast(dict, stored)

    def log(self, level: str, category: str, message: str, **fields: Any) -> dict:
        """Shorthand for `append` with the fields as keywords (run, agent, step, data, ...)."""
        return self.append({"level": level, "category": category, "message": message, **fields})

    def query(
        self,
        *,
        run: str | None = None,
        level: str | None = None,
        category: str | None = None,
        grep: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[dict]:
        """Matching events, oldest first; `limit` keeps the newest N. Each is the caller's own."""
        filters = {"run": run, "level": level, "category": category, "grep": grep}
        return list(self.events(**filters, since=since, limit=limit))

    def events(self, *, limit: int | None = None, **filters: Any) -> Iterator[dict]:
        """`query`, one event at a time: a search that matches a million events holds one."""
        query = event_query(**filters)
        if limit is not None and limit < 0:
            raise ValueError(f"invalid limit {limit}: use 0 or more")
        if limit == 0:
            return
        given = 0
        for attempt in (1, 2):
            index = self._index()
            try:
                for event in self._search(index, query, limit):
                    given += 1
                    yield event
                return
            except (sqlite3.DatabaseError, StaleIndex) as exc:
                if given or attempt == 2 or isinstance(exc, sqlite3.OperationalError):
                    raise NexusError(f"cannot search the journal {self.path}: {exc}") from None
                # Damage only a search reached, or a file replaced meanwhile: once more.
                if isinstance(exc, sqlite3.DatabaseError):
                    index.close()
                    index.remove()
            finally:
                index.close()

    def follow(
        self,
        *,
        poll: float = 0.2,
        stop: Callable[[], bool] | None = None,
        **filters: Any,
    ) -> Iterator[dict]:
        """Matching events so far (newest `limit` if given), then each new one as it arrives."""
        limit = filters.pop("limit", None)
        query = event_query(**filters)
        if limit is not None and limit < 0:
            raise ValueError(f"invalid limit {limit}: use 0 or more")
        seen = _file_state(self.path)  # before the index is read: no append slips between
        with closing(self._index()) as index:
            mark = index.last_line
            if limit != 0:
                yield from self._search(index, replace(query, until=mark), limit)
            while stop is None or not stop():
                now = _file_state(self.path)
                if now == seen:  # nothing appended: no need for the index's write lock
                    time.sleep(poll)
                    continue
                seen = now
                try:
                    index.refresh()
                except sqlite3.Error as exc:
                    raise NexusError(f"cannot follow the journal {self.path}: {exc}") from None
                last = index.last_line
                if last == mark:
                    time.sleep(poll)
                    continue
                new = replace(query, after=mark, until=last)
                yield from self._read(index, index.spans(new, by_line=True), query)
                mark = last

    def catch_up(self) -> None:
        """Index what was appended since the last search, if an index exists (building one
        whole is left to a search); never fails, since nothing depends on it."""
        if not index_path(self.path).is_file():
            return
        with suppress(Exception), closing(JournalIndex(self.path)) as index:
            index.refresh()

    def _index(self) -> JournalIndex:
        """The index, brought up to date. A damaged one is built again; where none can be
        written (read-only, full, locked for a minute) one is built in memory, so a search
        never fails for the index's sake."""
        try:
            return self._refreshed(JournalIndex(self.path))
        except sqlite3.OperationalError:
            pass
        except sqlite3.DatabaseError:
            with suppress(sqlite3.Error):
                return self._refreshed(JournalIndex(self.path))
        try:
            return self._refreshed(JournalIndex(self.path, in_memory=True))
        except sqlite3.Error as exc:
            raise NexusError(f"cannot search the journal {self.path}: {exc}") from None

    def _refreshed(self, index: JournalIndex) -> JournalIndex:
        try:
            index.refresh()
        except sqlite3.DatabaseError as exc:
            index.close()
            if not isinstance(exc, sqlite3.OperationalError):
                index.remove()  # damaged: what the next try builds anew
            raise
        self.skipped = index.corrupt
        return index

    def _search(self, index: JournalIndex, query: Query, limit: int | None) -> Iterator[dict]:
        if limit is None:
            yield from self._read(index, index.spans(query), query)
            return
        if query.needle is None:  # the time index gives the newest lines straight away
            found = self._read(index, index.spans(query, newest_first=True), query)
            yield from reversed(list(itertools.islice(found, limit)))
            return
        yield from reversed(self._newest(index, query, limit))

    def _newest(self, index: JournalIndex, query: Query, limit: int) -> list[dict]:
        """The newest `limit` matches of a needle, looked for among the last lines first,
        in windows growing fourfold, so neither a needle in most lines (whose matches the
        trigram index would list in full) nor a rare one costs a pass over everything."""
        last = index.last_line if query.until is None else min(query.until, index.last_line)
        window = limit * WINDOW
        while True:
            floor = max(last - window, query.after or 0)
            part = replace(query, after=floor) if floor else query
            spans = index.spans(part, newest_first=True)
            found = list(itertools.islice(self._read(index, spans, query), limit))
            if floor == (query.after or 0):
                return found  # the window is everything the query may see
            oldest = found[-1].get("ts") if len(found) == limit else None
            if isinstance(oldest, str) and not index.older_since(query, floor, oldest):
                return found
            window *= 4

    def _read(
        self, index: JournalIndex, spans: Iterator[tuple[int, int, int]], query: Query
    ) -> Iterator[dict]:
        """The events at those places in the file that match: the index only narrows the
        lines down, so each line's own bytes are checked against the whole query."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            stat = os.fstat(fd)
            if index.identity not in (None, (stat.st_dev, stat.st_ino)):
                raise StaleIndex("the journal was replaced during the search")
            for _line, start, size in spans:
                raw = os.pread(fd, size + 1, start)
                if raw[-1:] != b"\n":
                    continue  # the file changed after the index was read: not this event
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(event, dict) and well_formed(event) and query.matches(event):
                    yield event
        finally:
            os.close(fd)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _file_state(path: Path) -> tuple[int, int, int, int] | None:
    """What changes when a line is appended, or the file replaced or rewritten."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns
