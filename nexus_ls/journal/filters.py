"""Journal search filters, checked once, and the `--since` time syntax.

One function turns the CLI's and the language server's filter arguments into a single `Query`,
so `nexus log`, `nexus.log` and `--follow` agree on what matches and refuse the same mistakes.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from .events import CATEGORIES, LEVELS, format_ts, parse_ts
from .index import RANK, Query

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
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


def event_query(
    *,
    run: str | None = None,
    level: str | None = None,
    category: str | None = None,
    grep: str | None = None,
    since: datetime | None = None,
) -> Query:
    """The search matching all the given filters (a run id or prefix, a minimum level, a
    category, text in the message or data whatever its case, a time); each one checked."""
    rank = None
    if level is not None:
        if level.upper() not in RANK:
            raise ValueError(f"invalid level {level!r}: use one of {', '.join(LEVELS)}")
        rank = RANK[level.upper()]
    if category is not None and category.lower() not in CATEGORIES:
        raise ValueError(f"invalid category {category!r}: use one of {', '.join(CATEGORIES)}")
    return Query(
        run=run,
        rank=rank,
        category=category.lower() if category is not None else None,
        needle=grep.lower() if grep is not None else None,
        since=format_ts(since) if since is not None else None,
    )
