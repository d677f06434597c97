"""Journal search filters as TinyDB queries, and the `--since` time syntax.

One function turns the CLI's and the language server's filter arguments into a single TinyDB
query, so `nexus log`, `nexus.log` and `--follow` agree on what matches.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from functools import partial, reduce
from typing import Any

from tinydb import where
from tinydb.queries import QueryInstance

from .events import CATEGORIES, LEVELS, format_ts, parse_ts

_RANK: dict[str, int] = {name: rank for rank, name in enumerate(LEVELS)}
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# One shared encoder: json.dumps with options builds a new encoder per call, per event.
_to_json = json.JSONEncoder(ensure_ascii=False).encode
_DURATION = re.compile(r"\s*(\d+)\s*([smhdw])\s*", re.IGNORECASE)


def parse_since(text: str) -> datetime:
    """`90s`, `10m`, `2h`, `3d` before now (UTC), or an ISO date or datetime (UTC if naive)."""
    match = _DURATION.fullmatch(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2).lower()
        try:
            return datetime.now(timezone.utc) - timedelta(**{_UNITS[unit]: amount})
        except (OverflowError, ValueError):
            raise ValueError(f"invalid time {text!r}: that is before the year 1") from None
    try:
        return parse_ts(text)
    except ValueError:
        raise ValueError(
            f"invalid time {text!r}: use a duration such as 90s, 10m, 2h or 3d, "
            "or an ISO date such as 2024-05-01 or 2024-05-01T12:00:00Z"
        ) from None


def event_filter(
    *,
    run: str | None = None,
    level: str | None = None,
    category: str | None = None,
    grep: str | None = None,
    since: datetime | None = None,
) -> QueryInstance | None:
    """The TinyDB query matching all the given filters; None when nothing is filtered."""
    parts: list[QueryInstance] = []
    if run is not None:
        parts.append(where("run").test(partial(_has_prefix, prefix=run)))
    if level is not None:
        if level.upper() not in _RANK:
            raise ValueError(f"invalid level {level!r}: use one of {', '.join(LEVELS)}")
        parts.append(where("level").test(partial(_at_least, minimum=_RANK[level.upper()])))
    if category is not None:
        if category.lower() not in CATEGORIES:
            raise ValueError(f"invalid category {category!r}: use one of {', '.join(CATEGORIES)}")
        parts.append(where("category") == category.lower())
    if since is not None:
        parts.append(where("ts").test(partial(_not_before, moment=format_ts(since))))
    if grep is not None:
        needle = grep.lower()
        in_message = where("message").test(partial(_contains, needle=needle))
        parts.append(in_message | where("data").test(partial(_json_contains, needle=needle)))
    return reduce(lambda left, right: left & right, parts) if parts else None


def _has_prefix(value: Any, prefix: str) -> bool:
    return isinstance(value, str) and value.startswith(prefix)


def _at_least(value: Any, minimum: int) -> bool:
    return _RANK.get(value, -1) >= minimum


def _not_before(value: Any, moment: str) -> bool:
    # Timestamps are fixed-width UTC strings, so string order is time order.
    return isinstance(value, str) and value >= moment


def _contains(value: Any, needle: str) -> bool:
    return isinstance(value, str) and needle in value.lower()


def _json_contains(value: Any, needle: str) -> bool:
    return needle in _to_json(value).lower()
