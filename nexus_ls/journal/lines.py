"""How an event becomes one line of the journal file, and back.

One line per event is what makes appends cheap and a torn write harmless: a reader can always
tell a complete event (a whole line that parses) from a damaged one and skip just that line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from sys import intern
from typing import Any, NoReturn

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class AppendOnlyError(ValueError):
    """Raised for any attempt to change or remove an event already in the journal."""


class StoredEvent(dict):
    """An event (or an object inside one) as read from the file: a dict that refuses to change.

    Readers share the parsed events instead of copying a million of them per query; making them
    immutable is what lets `write` tell an untouched event from one edited in place, and what
    stops a caller that changes a query result from silently changing every later result.
    Copies (`dict(event)`, `copy.deepcopy`, pickling) are ordinary dicts.
    """

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("the journal is append-only: a stored event cannot be changed")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _refuse  # type: ignore[assignment]
    __ior__ = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))


def _stored(obj: dict[str, Any]) -> StoredEvent:
    # json shares repeated keys only within one document; a million events would otherwise
    # hold a million copies of "category". Interned keys halve the memory of a large journal.
    return StoredEvent({intern(key): value for key, value in obj.items()})


_DECODER = json.JSONDecoder(object_hook=_stored)


def encode_line(doc: Mapping[str, Any]) -> bytes:
    """One event as one line of UTF-8 JSON.

    JSON escapes control characters, so the only newline is the terminator. A lone surrogate
    (from bytes decoded with `surrogateescape`) cannot be UTF-8 encoded; `backslashreplace`
    writes it as a `\\udcXX` escape, which is valid JSON for the same string.
    """
    return _ENCODER.encode(doc).encode("utf-8", errors="backslashreplace") + b"\n"


def decode_line(line: bytes) -> StoredEvent | None:
    """The document on one line, or None if the line is not a JSON object (bad JSON or UTF-8)."""
    try:
        doc = _DECODER.decode(line.decode("utf-8"))
    except ValueError:
        return None
    return doc if isinstance(doc, StoredEvent) else None


def well_formed(doc: Mapping[str, Any]) -> bool:
    """Whether a document has an event's shape: every reader may rely on its fields' types."""
    get = doc.get
    return (
        type(get("ts", "")) is str
        and type(get("id", "")) is str
        and type(get("level")) is str
        and type(get("category")) is str
        and type(get("message")) is str
        and isinstance(get("data", _EMPTY), dict)
        and type(get("run")) in _OPTIONAL_TEXT
        and type(get("agent")) in _OPTIONAL_TEXT
        and type(get("step")) in _OPTIONAL_NUMBER
    )


_EMPTY: dict[str, Any] = {}
_OPTIONAL_TEXT = (str, type(None))
_OPTIONAL_NUMBER = (int, type(None))
