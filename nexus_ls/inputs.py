"""Text NEXUS takes from a user (a task, a selection) must be real Unicode text.

A command line in another encoding reaches Python as lone surrogates (`\\udce9` for the
byte 0xe9), and JSON-RPC can carry a lone surrogate escape; neither can be written as
UTF-8, so a run started from one would fail half-made. They are refused up front.
"""

from __future__ import annotations

from nexus_ls.errors import NexusError


def check_text(value: str, what: str) -> str:
    """`value`, or NexusError naming the first character that is not text."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        char = ord(value[exc.start])
        found = (
            f"byte 0x{char - 0xDC00:02x}"
            if 0xDC80 <= char <= 0xDCFF
            else f"a lone surrogate U+{char:04X}"
        )
        raise NexusError(
            f"the {what} is not valid UTF-8 text ({found} at character {exc.start + 1}); "
            "write it in UTF-8"
        ) from None
    return value
