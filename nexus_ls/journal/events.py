"""The journal's event schema: one shape for every action, so any reader can filter any event.

An event is `{id, ts, level, category, run, agent, step, message, data}`. `make_event` is the
single gate every event passes: it rejects unknown levels and categories, squeezes the message
onto one line and makes `data` JSON-safe, so a bad caller fails loudly here instead of leaving a
line in the journal that no reader can parse.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from datetime import date, datetime, timezone
from pathlib import PurePath
from typing import Any, Literal, get_args

Level = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
Category = Literal[
    "run", "model", "tool", "edit", "command", "test", "memory", "agent", "message", "metric",
    "error",
]  # fmt: skip
LEVELS: tuple[Level, ...] = get_args(Level)
CATEGORIES: tuple[Category, ...] = get_args(Category)
FIELDS: tuple[str, ...] = (
    "id", "ts", "level", "category", "run", "agent", "step", "message", "data",
)  # fmt: skip
MAX_MESSAGE_CHARS = 2000


def new_event_id() -> str:
    """An id that sorts by creation time and cannot collide between concurrent writers.

    13 digits of milliseconds since the epoch (fixed width, so string order is time order until
    the year 2286) and 40 random bits from the OS, so two processes (even forked ones) writing
    in the same millisecond still differ.
    """
    return f"{time.time_ns() // 1_000_000:013d}-{os.urandom(5).hex()}"


def now_iso() -> str:
    """The current UTC time in the journal's one timestamp format."""
    # isoformat of an aware UTC time ends in "+00:00"; swap that for "Z".
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"


def format_ts(moment: datetime) -> str:
    """`2024-05-01T12:00:00.123Z`: fixed width, so timestamps compare correctly as strings."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds") + "Z"


def parse_ts(text: str) -> datetime:
    """Read an ISO 8601 timestamp (a trailing `Z` allowed); naive times are taken as UTC."""
    if not isinstance(text, str):
        raise ValueError(f"invalid timestamp {text!r}: use an ISO 8601 string")
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"invalid timestamp {text!r}: use ISO 8601, e.g. 2024-05-01T12:00:00.000Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def level_at_least(level: str, minimum: str) -> bool:
    """True if `level` is as severe as `minimum` or more (for `--level WARNING` style filters)."""
    return LEVELS.index(_check_level(level)) >= LEVELS.index(_check_level(minimum))


def one_line(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Collapse line breaks so a message stays one terminal line; details belong in `data`."""
    flat = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def json_safe(value: Any) -> Any:
    """A copy of `value` that `json.dumps(..., allow_nan=False)` accepts, whatever callers pass.

    A tool result may hold paths, bytes or exceptions; logging them must never fail, so anything
    JSON has no type for becomes its string form.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [json_safe(item) for item in items]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, datetime):
        return format_ts(value)
    if isinstance(value, (date, PurePath)):
        return str(value)
    return str(value)


def make_event(
    level: str,
    category: str,
    message: str,
    *,
    run: str | None = None,
    agent: str | None = None,
    step: int | None = None,
    data: dict | None = None,
    ts: str | None = None,
    id: str | None = None,
) -> dict:
    """Build a valid event; raise ValueError naming the bad field and the accepted values."""
    if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
        raise ValueError(f"invalid step {step!r}: use an integer or None")
    for name, value in (("run", run), ("agent", agent), ("id", id)):
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"invalid {name} {value!r}: use a non-empty string or None")
    if data is not None and not isinstance(data, Mapping):
        raise ValueError(f"invalid data of type {type(data).__name__}: use a dict (a JSON object)")
    return {
        "id": id or new_event_id(),
        "ts": format_ts(parse_ts(ts)) if ts is not None else now_iso(),
        "level": _check_level(level),
        "category": _check_category(category),
        "run": run,
        "agent": agent,
        "step": step,
        "message": one_line(message),
        "data": json_safe(data or {}),
    }


def _check_level(level: str) -> str:
    name = level.upper() if isinstance(level, str) else level
    if name not in LEVELS:
        raise ValueError(f"invalid level {level!r}: use one of {', '.join(LEVELS)}")
    return name


def _check_category(category: str) -> str:
    name = category.lower() if isinstance(category, str) else category
    if name not in CATEGORIES:
        raise ValueError(f"invalid category {category!r}: use one of {', '.join(CATEGORIES)}")
    return name
