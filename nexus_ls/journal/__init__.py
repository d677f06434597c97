"""The per-workspace journal: every action of every run, as append-only JSON lines.

`Journal` writes and searches; `make_event` defines the event shape; `Redactor` keeps secrets
out; `report` turns events into terminal lines, exports and run timelines.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .events import CATEGORIES, LEVELS, level_at_least, make_event, new_event_id, now_iso
    from .printable import json_safe, printable
    from .redact import Redactor, secret_env_names
    from .report import export, format_line, timeline
    from .storage import AppendOnlyError, JsonLinesStorage
    from .store import Journal, parse_since

# Each name is imported from its module when first used, so a reader that needs one part
# (a search, an event's shape) starts without the rest (exports, timelines).
_HOME = {
    "AppendOnlyError": "storage",
    "CATEGORIES": "events",
    "Journal": "store",
    "JsonLinesStorage": "storage",
    "LEVELS": "events",
    "Redactor": "redact",
    "export": "report",
    "format_line": "report",
    "json_safe": "printable",
    "level_at_least": "events",
    "make_event": "events",
    "new_event_id": "events",
    "now_iso": "events",
    "parse_since": "store",
    "printable": "printable",
    "secret_env_names": "redact",
    "timeline": "report",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "CATEGORIES",
    "LEVELS",
    "AppendOnlyError",
    "Journal",
    "JsonLinesStorage",
    "Redactor",
    "export",
    "format_line",
    "level_at_least",
    "make_event",
    "new_event_id",
    "now_iso",
    "parse_since",
    "json_safe",
    "printable",
    "secret_env_names",
    "timeline",
]
