"""Keep secrets out of the journal and out of commits.

Model output, command output and tool arguments can all echo an API key back (a model that
runs `env`, a failing request that prints its headers). The journal is a plain file users share
and export, so every value is scrubbed on the way in rather than trusting each writer.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
MIN_SECRET_CHARS = 8
EXTRA_NAME = "secret"


def secret_env_names(environ: Mapping[str, str]) -> list[str]:
    """Names of variables that look like secrets; also used to strip them from child envs.

    Short values (`KEY=1`, empty tokens) are flags rather than secrets, and redacting them would
    mangle every string that happens to contain them.
    """
    return sorted(
        name
        for name, value in environ.items()
        if SECRET_NAME.search(name) and len(value) >= MIN_SECRET_CHARS
    )


class Redactor:
    """Replaces every known secret value with `[redacted:NAME]`, inside any JSON-like value."""

    def __init__(self, environ: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> None:
        env = os.environ if environ is None else environ
        names: dict[str, str] = {}
        for name in secret_env_names(env):
            names.setdefault(env[name], name)
        for value in extra:
            if value:
                names.setdefault(value, EXTRA_NAME)
        self._names = names
        # Longest first, so a secret that contains another is replaced whole.
        values = sorted(names, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, values))) if values else None

    @property
    def names(self) -> list[str]:
        """The names whose values are redacted (never the values), for diagnostics."""
        return sorted(set(self._names.values()))

    def scrub_text(self, text: str) -> str:
        """`text` with every secret replaced by its placeholder."""
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda match: f"[redacted:{self._names[match.group()]}]", text)

    def scrub(self, obj: Any) -> Any:
        """A copy of `obj` with secrets replaced in every string, keys included."""
        if self._pattern is None:
            return obj
        if isinstance(obj, str):
            return self.scrub_text(obj)
        if isinstance(obj, Mapping):
            return {self.scrub(key): self.scrub(value) for key, value in obj.items()}
        if isinstance(obj, list):
            return [self.scrub(item) for item in obj]
        if isinstance(obj, tuple):
            return tuple(self.scrub(item) for item in obj)
        return obj
