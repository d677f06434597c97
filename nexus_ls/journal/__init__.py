"""The per-workspace journal: every action of every run, as append-only JSON lines.

`Journal` writes and searches; `make_event` defines the event shape; `Redactor` keeps secrets
out; `report` turns events into terminal lines, exports and run timelines.
"""

from .events import CATEGORIES, LEVELS, level_at_least, make_event, new_event_id, now_iso
from .printable import json_safe, printable
from .redact import Redactor, secret_env_names
from .report import export, format_line, timeline
from .storage import AppendOnlyError, JsonLinesStorage
from .store import Journal, parse_since

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
