"""No secret is ever stored in memory: a lesson is shown to every later run's model.

Lessons pass the journal's own detectors (`journal.redact`: the host's secret variables
by value, well-known key shapes by pattern). A lesson someone asks to store that holds one
is refused, naming what was found, rather than stored redacted: a lesson with a hole in
it teaches nothing. Text learned from the journal was redacted on its way in; a lesson
that would carry a `[redacted:...]` placeholder is not learned.
"""

from __future__ import annotations

import re

from nexus_ls.journal.redact import Redactor

PLACEHOLDER = re.compile(r"\[redacted:([^\]\s]+)\]")


def secrets_in(text: str, redactor: Redactor) -> list[str]:
    """The kinds of secret `text` holds (a variable's name, or a shape such as
    `openai-key`), none if it holds none."""
    scrubbed = redactor.scrub_text(text)
    if scrubbed == text:
        return []
    before = set(PLACEHOLDER.findall(text))
    return sorted(set(PLACEHOLDER.findall(scrubbed)) - before) or ["secret"]


def has_placeholder(text: str) -> bool:
    return PLACEHOLDER.search(text) is not None
