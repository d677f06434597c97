"""Reading, listing, searching and changing the worktree's files.

Every path goes through `resolve_inside` first, so a tool can neither read nor write
outside the run's worktree; outputs are capped so one large file cannot flood the
model's context.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from nexus_ls.sandbox.paths import relative, resolve_inside
from nexus_ls.tools.base import Tool, ToolContext, ToolError, ToolResult, failure, object_schema
from nexus_ls.tools.editmatch import EditError, apply_edit
from nexus_ls.tools.listing import is_binary, project_files
from nexus_ls.tools.output import cap

MAX_READ_BYTES = 20_000_000
MAX_LISTED = 500
MAX_HITS = 200
MAX_HIT_CHARS = 240
MAX_DIFF_CHARS = 200_000


def read_file(
    ctx: ToolContext, path: str, start_line: int | None = None, end_line: int | None = None
) -> ToolResult:
    """Numbered lines, so the model can cite and edit them precisely."""
    target = _existing_file(ctx.root, path)
    if target.stat().st_size > MAX_READ_BYTES:
        raise ToolError(f"{path} is too large to read whole; use search or run_command (sed -n)")
    raw = target.read_bytes()
    if is_binary(raw):
        raise ToolError(f"{path} is a binary file; read_file shows text only")
    text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n")
    lines = text.split("\n") if text else []
    if text.endswith("\n"):
        lines.pop()
    total = len(lines)
    first = start_line or 1
    last = min(end_line or total, total)
    if first < 1 or (end_line is not None and end_line < first):
        raise ToolError("start_line must be >= 1 and end_line >= start_line")
    if total == 0:
        return ToolResult(True, f"{path} is empty", {"path": path, "total_lines": 0})
    if first > total:
        raise ToolError(f"{path} has only {total} lines; start_line {first} is past the end")
    budget, used, shown = ctx.output_limit - 200, 0, list[str]()
    for number in range(first, last + 1):
        line = f"{number:>6}\t{lines[number - 1]}"
        if shown and used + len(line) > budget:
            last = number - 1
            break
        shown.append(cap(line, budget))
        used += len(shown[-1]) + 1
    body = "\n".join(shown)
    if last < total or first > 1:
        body += f"\n[lines {first}-{last} of {total}"
        body += f"; pass start_line={last + 1} to read on]" if last < total else "]"
    data = {"path": path, "start_line": first, "end_line": last, "total_lines": total}
    return ToolResult(True, body, data)


def list_files(ctx: ToolContext, path: str | None = None, pattern: str | None = None) -> ToolResult:
    """Project files (as git would list them), optionally filtered by a glob."""
    base = resolve_inside(ctx.root, path or ".")
    if not base.exists():
        raise ToolError(f"{path} does not exist")
    files = project_files(ctx.root, base, pattern)
    data = {"path": path or ".", "pattern": pattern, "count": len(files)}
    if not files:
        what = f" matching {pattern!r}" if pattern else ""
        return ToolResult(True, f"no files{what} under {path or '.'}", data)
    head = f"{len(files)} file{'s' if len(files) != 1 else ''}"
    if len(files) > MAX_LISTED:
        head += f"; showing the first {MAX_LISTED} (narrow with path or pattern)"
    return ToolResult(True, cap("\n".join([head, *files[:MAX_LISTED]]), ctx.output_limit), data)


def search(ctx: ToolContext, pattern: str, path: str | None = None) -> ToolResult:
    """Lines matching a regex (or the literal text when the regex is invalid)."""
    if not pattern:
        raise ToolError("pattern is empty; give a regular expression or plain text to find")
    base = resolve_inside(ctx.root, path or ".")
    if not base.exists():
        raise ToolError(f"{path} does not exist")
    note = ""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        regex = re.compile(re.escape(pattern))
        note = f"(not a valid regex: {exc}; searched for the literal text)\n"
    hits: list[str] = []
    total = 0
    for name in project_files(ctx.root, base, None):
        file = ctx.root / name
        if file.is_symlink() or not file.is_file() or file.stat().st_size > MAX_READ_BYTES:
            continue
        raw = file.read_bytes()
        if is_binary(raw):
            continue
        for number, line in enumerate(raw.decode("utf-8", errors="replace").split("\n"), 1):
            if regex.search(line):
                total += 1
                if len(hits) < MAX_HITS:
                    hits.append(f"{name}:{number}: {line.rstrip()[:MAX_HIT_CHARS]}")
    data = {"pattern": pattern, "path": path or ".", "matches": total, "literal": bool(note)}
    if not hits:
        return ToolResult(True, f"{note}no matches for {pattern!r} under {path or '.'}", data)
    more = f"\n[{total - MAX_HITS} more matches not shown; narrow the pattern or path]"
    body = note + "\n".join(hits) + (more if total > MAX_HITS else "")
    return ToolResult(True, cap(body, ctx.output_limit), data)


def write_file(ctx: ToolContext, path: str, content: str) -> ToolResult:
    """Create or overwrite a file; the diff goes to the journal and the commit."""
    target = resolve_inside(ctx.root, path)
    if target.is_dir():
        raise ToolError(f"{path} is a directory; give a file path")
    existed = target.exists()
    old = _old_text(target) if existed else ""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content.encode("utf-8"))
    name = relative(ctx.root, target)
    diff = unified_diff(name, old, content, created=not existed)
    lines = content.count("\n") + (0 if content.endswith("\n") or not content else 1)
    if not existed:
        verb = "created"
    elif old == content:
        verb = "unchanged (same content)"
    else:
        verb = "wrote"
    data = {"path": name, "created": not existed, "diff": cap(diff, MAX_DIFF_CHARS)}
    return ToolResult(
        True, f"{verb} {name} ({lines} line{'s' * (lines != 1)})", data, category="edit"
    )


def edit_file(ctx: ToolContext, path: str, old: str, new: str) -> ToolResult:
    """Replace one exact (or whitespace-tolerant) occurrence of `old` by `new`."""
    target = _existing_file(ctx.root, path, hint="; use write_file to create it")
    try:
        original = target.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolError(f"{path} is not UTF-8 text; edit_file cannot change it safely") from exc
    crlf = "\r\n" in original
    text = original.replace("\r\n", "\n") if crlf else original
    try:
        change = apply_edit(text, old.replace("\r\n", "\n"), new.replace("\r\n", "\n"))
    except EditError as exc:
        return failure(f"{exc}", category="edit", path=path)
    result = change.text.replace("\n", "\r\n") if crlf else change.text
    target.write_bytes(result.encode("utf-8"))
    name = relative(ctx.root, target)
    diff = unified_diff(name, original, result)
    how = "exact match" if change.method == "exact" else "match ignoring whitespace, re-indented"
    head = f"edited {name}: lines {change.start_line}-{change.end_line} replaced ({how})"
    data = {
        "path": name,
        "diff": cap(diff, MAX_DIFF_CHARS),
        "method": change.method,
        "start_line": change.start_line,
        "end_line": change.end_line,
    }
    return ToolResult(True, f"{head}\n{cap(diff, 3000)}".rstrip(), data, category="edit")


def unified_diff(name: str, old: str, new: str, created: bool = False) -> str:
    """A git-style diff of one file, readable by people and `git apply`."""
    chunks = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile="/dev/null" if created else f"a/{name}",
        tofile=f"b/{name}",
    )
    return "".join(
        c if c.endswith("\n") else c + "\n\\ No newline at end of file\n" for c in chunks
    )


def _existing_file(root: Path, path: str, hint: str = "") -> Path:
    target = resolve_inside(root, path)
    if target.is_dir():
        raise ToolError(f"{path} is a directory; use list_files to see what it holds")
    if not target.exists():
        raise ToolError(f"{path} does not exist{hint}")
    return target


def _old_text(target: Path) -> str:
    raw = target.read_bytes()
    return "" if is_binary(raw) else raw.decode("utf-8", errors="replace")


def _s(name: str, text: str) -> dict[str, dict[str, str]]:
    return {name: {"type": "string", "description": text}}


_LINE = {"type": "integer", "minimum": 1}
_PATH_DIR = "Folder relative to the project root (default: the whole project)."

TOOLS = (
    Tool(
        "read_file",
        "Read a text file with line numbers. Use start_line/end_line for parts of long files.",
        object_schema(
            {
                **_s("path", "File path relative to the project root."),
                "start_line": {**_LINE, "description": "First line to show (1-based)."},
                "end_line": {**_LINE, "description": "Last line to show (inclusive)."},
            },
            ["path"],
        ),
        read_file,
    ),
    Tool(
        "list_files",
        "List the project's files (ignored files and .git left out), optionally by glob.",
        object_schema(
            {**_s("path", _PATH_DIR), **_s("pattern", "Glob such as '*.py' or 'src/**/*.ts'.")}
        ),
        list_files,
    ),
    Tool(
        "search",
        "Find lines matching a regular expression; prints path:line: text for each match.",
        object_schema(
            {
                **_s("pattern", "Python regular expression (or plain text)."),
                **_s("path", _PATH_DIR),
            },
            ["pattern"],
        ),
        search,
    ),
    Tool(
        "write_file",
        "Create a file or replace its whole content. Prefer edit_file for changes to a file.",
        object_schema(
            {
                **_s("path", "File path relative to the project root."),
                **_s("content", "The complete new content of the file."),
            },
            ["path", "content"],
        ),
        write_file,
        category="edit",
    ),
    Tool(
        "edit_file",
        "Replace one occurrence of `old` with `new` in a file. `old` must match exactly one "
        "place; copy it from read_file output (without line numbers) with a few lines of context.",
        object_schema(
            {
                **_s("path", "File path relative to the project root."),
                **_s("old", "The exact text to replace."),
                **_s("new", "The text to put in its place."),
            },
            ["path", "old", "new"],
        ),
        edit_file,
        category="edit",
    ),
)
