"""What an editor's selection tells the agent: the file, the selected text, its diagnostics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nexus_ls.server.app import NexusServer, path_of, user_error


def _lines(rng: Any) -> tuple[int, int] | None:
    """0-based start and end lines of an LSP range given as JSON, or None if absent."""
    if rng is None:
        return None
    try:
        start, end = int(rng["start"]["line"]), int(rng["end"]["line"])
        end_char = int(rng["end"].get("character", 1))
    except (KeyError, TypeError, ValueError, OverflowError):  # 1e400 is a float: inf
        raise user_error("range must look like {start: {line, character}, end: {...}}") from None
    if end > start and end_char == 0:
        end -= 1  # a selection ending at column 0 does not include that line
    if start < 0 or end < start:
        raise user_error("range ends before it starts")
    return start, end


def _diagnostic_lines(diagnostics: Any, first: int, last: int) -> list[str]:
    if diagnostics is not None and not isinstance(diagnostics, list):
        raise user_error("diagnostics must be a list of LSP diagnostics")
    out = []
    for d in diagnostics or []:
        if not isinstance(d, dict):
            continue
        try:
            line = int(d["range"]["start"]["line"])
        except (KeyError, TypeError, ValueError, OverflowError):
            continue
        if first <= line <= last:
            source = f"{d.get('source')}: " if d.get("source") else ""
            out.append(f"- line {line + 1}: {source}{d.get('message', '')}")
    return out


def selection_context(ls: NexusServer, root: Path, uri: str, rng: Any, diagnostics: Any) -> str:
    """The file path, the selected lines (from the editor's buffer when it is open, so unsaved
    text counts) and the diagnostics in that range, for the agent's first message."""
    path = path_of(uri)
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        raise user_error(f"{path} is not inside the workspace {root}") from None
    document = ls.workspace.text_documents.get(uri)
    try:
        text = document.source if document is not None else path.read_text(errors="replace")
    except OSError as exc:
        raise user_error(f"cannot read {rel}: {exc.strerror}") from None
    lines = text.splitlines()
    span = _lines(rng)
    if span is None:
        return f"The task is about {rel}."
    first, last = span[0], min(span[1], max(len(lines) - 1, 0))
    body = "\n".join(lines[first : last + 1])
    parts = [f"{rel}, lines {first + 1}-{last + 1} (selected in the editor):\n```\n{body}\n```"]
    found = _diagnostic_lines(diagnostics, first, last)
    if found:
        parts.append("Diagnostics in that range:\n" + "\n".join(found))
    return "\n\n".join(parts)
