"""The event schema: every event has the same fields, valid values and JSON-safe data."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from nexus_ls.journal import CATEGORIES, LEVELS, level_at_least, make_event, new_event_id, now_iso

TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def test_make_event_has_exactly_the_schema_fields() -> None:
    event = make_event("INFO", "tool", "read a file", run="r1", agent="a1", step=3, data={"x": 1})
    assert list(event) == [
        *("id", "ts", "level", "category", "run", "agent", "step", "message", "data"),
    ]
    assert TS.match(event["ts"])
    assert event["run"] == "r1" and event["agent"] == "a1" and event["step"] == 3
    assert event["data"] == {"x": 1}


def test_optional_fields_default_to_null_and_empty_data() -> None:
    event = make_event("DEBUG", "metric", "m")
    assert (event["run"], event["agent"], event["step"], event["data"]) == (None, None, None, {})


def test_now_iso_is_utc_with_milliseconds() -> None:
    stamp = now_iso()
    assert TS.match(stamp)
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert parsed.tzinfo == timezone.utc


@pytest.mark.parametrize("level", ["TRACE", "warn", "", "CRITICAL"])
def test_unknown_level_is_refused_naming_the_choices(level: str) -> None:
    with pytest.raises(ValueError, match="DEBUG, INFO, WARNING, ERROR"):
        make_event(level, "tool", "x")


def test_unknown_category_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="run, model, tool"):
        make_event("INFO", "tools", "x")


def test_level_and_category_case_is_normalised() -> None:
    event = make_event("warning", "TOOL", "x")
    assert (event["level"], event["category"]) == ("WARNING", "tool")


def test_all_levels_and_categories_are_accepted() -> None:
    for level in LEVELS:
        for category in CATEGORIES:
            assert make_event(level, category, "x")["category"] == category


def test_message_becomes_one_line() -> None:
    event = make_event("INFO", "command", "first line\r\n  second line\n\n third\n")
    assert event["message"] == "first line second line third"


def test_very_long_message_is_shortened() -> None:
    event = make_event("INFO", "model", "x" * 10_000)
    assert len(event["message"]) == 2000 and event["message"].endswith("…")


def test_data_is_made_json_safe() -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque!"

    data = {
        "path": Path("a/b.py"),
        "raw": b"\xffbytes",
        "nan": float("nan"),
        "set": {3, 1},
        "tuple": (1, "two"),
        "obj": Opaque(),
        "nested": {1: [Opaque()]},
        "when": datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc),
    }
    event = make_event("INFO", "tool", "x", data=data)
    json.dumps(event, allow_nan=False)  # raises if anything is left unserialisable
    assert event["data"]["path"] == "a/b.py"
    assert event["data"]["nan"] == "nan"
    assert event["data"]["set"] == [1, 3]
    assert event["data"]["tuple"] == [1, "two"]
    assert event["data"]["obj"] == "opaque!"
    assert event["data"]["nested"] == {"1": ["opaque!"]}
    assert event["data"]["when"] == "2024-05-01T12:00:00.000Z"
    assert event["data"]["raw"].endswith("bytes")


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"data": ["not", "a", "dict"]}, "use a dict"),
        ({"step": True}, "invalid step"),
        ({"step": "3"}, "invalid step"),
        ({"run": ""}, "invalid run"),
        ({"agent": 5}, "invalid agent"),
        ({"ts": "yesterday"}, "invalid timestamp"),
    ],
)
def test_bad_fields_are_refused(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        make_event("INFO", "tool", "x", **kwargs)


def test_given_ts_and_id_are_kept_and_ts_normalised() -> None:
    event = make_event("INFO", "tool", "x", ts="2024-05-01T14:00:00+02:00", id="my-id")
    assert event["ts"] == "2024-05-01T12:00:00.000Z"
    assert event["id"] == "my-id"


def test_ids_are_unique() -> None:
    ids = {new_event_id() for _ in range(20_000)}
    assert len(ids) == 20_000


def test_ids_sort_by_time() -> None:
    first = new_event_id()
    later = new_event_id()
    while later[:13] == first[:13]:  # wait for the next millisecond without sleeping
        later = new_event_id()
    assert sorted([later, first]) == [first, later]


def test_level_at_least() -> None:
    assert level_at_least("ERROR", "WARNING")
    assert level_at_least("WARNING", "WARNING")
    assert not level_at_least("INFO", "WARNING")
    assert level_at_least("DEBUG", "DEBUG")
    with pytest.raises(ValueError, match="invalid level"):
        level_at_least("LOUD", "INFO")
