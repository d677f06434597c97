"""Text from a run, made safe to print on a terminal.

File names, model output and command output are the model's to choose: an escape
sequence in one could retitle the window, rewrite earlier lines, hide text, or (on some
terminals) type commands back. Control characters, C1 codes and bidirectional overrides
are shown as visible escapes instead; newlines and tabs stay.
"""

from __future__ import annotations

import re

# Controls, C1 codes, bidi marks and overrides; and lone surrogates (from a model's text
# or bytes that were not UTF-8), which a terminal cannot even be sent.
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every character a terminal would act on written as an escape."""
    return _UNSAFE.sub(_escape, text)


def one_line(text: str) -> str:
    """As `printable`, and on one line (newlines shown as `\\n`)."""
    return printable(text).replace("\n", "\\n")


def json_safe(line: str) -> str:
    """A JSON text with the characters JSON leaves raw (C1 codes, bidi overrides) written
    as `\\u` escapes: the same JSON value, safe on a terminal."""
    return _UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", line)
