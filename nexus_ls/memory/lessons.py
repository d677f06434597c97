"""What a lesson is, and how far it is trusted now.

A lesson's stored `weight` moves with outcomes (a run that used it accepted, its tests
passing; a discard, the command it names now failing). What ranking uses is its
*strength*: the weight faded by how long ago the lesson was last confirmed (a half-life),
so memory that nothing confirms goes quiet instead of steering runs for ever. A lesson
whose strength is below `FLOOR` is kept (and listed) but no longer offered to a run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from nexus_ls.journal.events import parse_ts

# added: by the user; remembered: by a model; the others NEXUS learned from a run's journal.
KINDS = ("added", "remembered", "test-command", "environment", "fix", "convention", "review")
HALF_LIFE_DAYS = 30.0  # unconfirmed for this long, a lesson counts half as much
FLOOR = 0.3  # below this strength a lesson is no longer offered
START_WEIGHT = 1.0
# What a model remembered is its own word until its run is accepted: it starts lower, so
# a discard of that run (-0.5) takes it below FLOOR and it is no longer offered.
REMEMBERED_WEIGHT = 0.6
MAX_WEIGHT = 5.0
RISES = {"accepted": 0.5, "tests passed": 0.25, "confirmed": 0.25, "seen again": 0.0}
FALLS = {"discarded": 0.5, "contradicted": 0.75}
MAX_TEXT = 500  # characters of a lesson
MAX_TAGS = 8
MAX_TAG = 40
MAX_LISTED = 20  # evidence ids and runs kept per lesson: the newest


@dataclass
class Lesson:
    """One thing learned about the workspace, with where it came from and how it fared."""

    id: str
    text: str
    tags: list[str]
    source_run: str | None  # None: added by the user
    evidence: list[str]  # journal event ids it came from (and was confirmed by)
    weight: float
    uses: int  # times it was offered to a run or recalled
    created: str
    last_confirmed: str
    kind: str = "remembered"
    key: str = ""  # learned again under one key, a lesson is confirmed, not repeated
    command: str | None = None  # a command it names: failing later contradicts it
    used_by: list[str] = field(default_factory=list)  # runs it was offered or recalled to

    def strength(self, now: datetime | None = None) -> float:
        """The weight faded by the time since the lesson was last confirmed."""
        moment = (now or datetime.now(timezone.utc)).timestamp()
        days = (moment - _epoch(self.last_confirmed)) / 86400
        return self.weight * 0.5 ** (max(days, 0.0) / HALF_LIFE_DAYS)

    def offered(self, now: datetime | None = None) -> bool:
        return self.strength(now) >= FLOOR

    def origin(self) -> str:
        """Where it came from, in the words a model and a user read."""
        if self.source_run is None:
            return "added by the user"
        return f"learned in run {self.source_run}"

    def line(self) -> str:
        """The lesson as the model sees it: its text, marked with its source."""
        return f"{self.text} ({self.origin()})"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Lesson | None:
        """The lesson in a stored document, or None if it is not one (a hand-edited file)."""
        try:
            lesson = cls(**{name: doc[name] for name in FIELDS if name in doc})
        except TypeError:
            return None
        if not _valid(lesson):
            return None
        return lesson


FIELDS = tuple(Lesson.__dataclass_fields__)
_TEXTS = ("id", "text", "created", "last_confirmed", "kind", "key")
_LISTS = ("tags", "evidence", "used_by")


@lru_cache(maxsize=65536)
def _epoch(ts: str) -> float:
    """A timestamp as seconds (a bad one as now: it does not fade); lessons share few."""
    try:
        return parse_ts(ts).timestamp()
    except ValueError:
        return datetime.now(timezone.utc).timestamp()


def _valid(lesson: Lesson) -> bool:
    fields = lesson.__dict__
    for name in _TEXTS:
        if type(fields[name]) is not str:
            return False
    for name in _LISTS:
        items = fields[name]
        if type(items) is not list or any(type(item) is not str for item in items):
            return False
    return (
        isinstance(lesson.source_run, (str, type(None)))
        and isinstance(lesson.command, (str, type(None)))
        and isinstance(lesson.key, str)
        and isinstance(lesson.weight, (int, float))
        and not isinstance(lesson.weight, bool)
        and math.isfinite(lesson.weight)
        and isinstance(lesson.uses, int)
    )


def clamp(weight: float) -> float:
    return round(min(max(weight, 0.0), MAX_WEIGHT), 4)


def newest(items: list[str], more: list[str]) -> list[str]:
    """`items` and `more` without repeats, the newest `MAX_LISTED` kept."""
    return list(dict.fromkeys([*items, *more]))[-MAX_LISTED:]
