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
# Secrets of well-known shapes, found whatever their source (a file, a command's output).
# A private key block (PEM, OpenSSH, PGP) is cut to its END line, or to the end of its
# base64 body; a PuTTY key file to its MAC.
SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("private-key", r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY((?: BLOCK)?)-----"
         r"(?:[\s\S]{0,20000}?-----END \1PRIVATE KEY\2-----|(?:[\s+>|]*[A-Za-z0-9+/=]{8,})*)"),
        ("putty-key", r"PuTTY-User-Key-File-\d+:[\s\S]{0,20000}?(?:Private-MAC: [0-9a-fA-F]+|$)"),
        ("aws-access-key", r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
        ("aws-secret-key", r"(?i:(?<=aws_secret_access_key)\s*[=:]\s*['\"]?)[A-Za-z0-9/+=]{40}"),
        ("github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})"),
        ("openai-key", r"\bsk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,}"),
        ("slack-token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
        ("google-api-key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
    )
)  # fmt: skip


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
        """`text` with every secret replaced by its placeholder: known values by their
        variable's name, well-known shapes by theirs."""
        if self._pattern is not None:
            text = self._pattern.sub(lambda match: f"[redacted:{self._names[match.group()]}]", text)
        for name, shape in SHAPES:
            text = shape.sub(f"[redacted:{name}]", text)
        return text

    def scrub(self, obj: Any) -> Any:
        """A copy of `obj` with secrets replaced in every string, keys included."""
        if isinstance(obj, str):
            return self.scrub_text(obj)
        if isinstance(obj, Mapping):
            return {self.scrub(key): self.scrub(value) for key, value in obj.items()}
        if isinstance(obj, list):
            return [self.scrub(item) for item in obj]
        if isinstance(obj, tuple):
            return tuple(self.scrub(item) for item in obj)
        return obj
