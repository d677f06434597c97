"""A workspace's journal: where every event is written, searched and followed.

`Journal` is the one door to the file: it validates and redacts each event before the
append-only storage sees it, so no caller can write an event that readers cannot parse or one
that carries a secret. Searches go through TinyDB's query API over that storage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from tinydb import TinyDB

from nexus_ls.errors import NexusError

from .events import FIELDS, make_event
from .filters import event_filter, parse_since
from .lines import well_formed
from .redact import Redactor
from .storage import TABLE, JsonLinesStorage, paused_gc

__all__ = ["Journal", "parse_since"]

JOURNAL_FILE = "journal.jsonl"


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
        # No query cache: other processes append behind TinyDB's back.
        self._table = self._db.table(TABLE, cache_size=0)
        self.storage = cast(JsonLinesStorage, self._db.storage)

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
        """Matching events, oldest first; `limit` keeps the newest N.

        Each event is a fresh dict, but the objects inside it (`data`) are shared with the
        journal's cache and read-only: copy them (`copy.deepcopy`) to change them.
        """
        condition = event_filter(run=run, level=level, category=category, grep=grep, since=since)
        table = self._table
        with paused_gc():
            # TinyDB returns copies (Documents, which are dicts): callers may keep or change them.
            events = list[dict](table.all() if condition is None else table.search(condition))
            # Lines are in append order; concurrent writers can interleave timestamps slightly.
            events.sort(key=lambda event: str(event.get("ts", "")))
        return _newest(events, limit)

    def follow(
        self,
        *,
        poll: float = 0.2,
        stop: Callable[[], bool] | None = None,
        **filters: Any,
    ) -> Iterator[dict]:
        """Matching events so far (newest `limit` if given), then each new one as it arrives."""
        limit = filters.pop("limit", None)
        condition = event_filter(**filters)
        existing = self.query(limit=limit, **filters)
        mark = self.storage.snapshot_mark  # the last line the query above saw
        yield from existing
        while stop is None or not stop():
            new = self.storage.events_after(mark)
            if not new:
                time.sleep(poll)
                continue
            mark = new[-1][0]
            for _, doc in new:
                if condition is None or condition(doc):
                    yield dict(doc)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _newest(events: list[dict], limit: int | None) -> list[dict]:
    if limit is None:
        return events
    if limit < 0:
        raise ValueError(f"invalid limit {limit}: use 0 or more")
    return events[-limit:] if limit else []
