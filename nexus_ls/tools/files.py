"""Reading, listing, searching and changing the worktree's files.

Every path is checked by `resolve_inside` (its spelling) and then opened through
`sandbox.safefs` (no symlink followed, regular files only, writes renamed into place),
so a tool can neither read nor write outside the run's worktree. Reads and searches are
bounded in size and time; outputs are capped so one large file cannot flood the model's
context.
"""

from __future__ import annotations

import difflib
import os
import stat
import time
from pathlib import Path

import regex

from nexus_ls.sandbox.paths import resolve_inside
from nexus_ls.sandbox.safefs import UnsafeFile, lstat_beneath, read_regular, write_atomic
from nexus_ls.tools.base import Tool, ToolContext, ToolError, ToolResult, failure, object_schema
from nexus_ls.tools.editmatch import EditError, apply_edit
from nexus_ls.tools.listing import is_binary, project_files
from nexus_ls.tools.output import cap

MAX_READ_BYTES = 20_000_000
MAX_LISTED = 500
MAX_HITS = 200
MAX_HIT_CHARS = 240
MAX_DIFF_CHARS = 200_000
SEARCH_SECONDS = 10.0  # a pattern that backtracks without end is cut off here


def read_file(
    ctx: ToolContext, path: str, start_line: int | None = None, end_line: int | None = None
) -> ToolResult:
    """Numbered lines, so the model can cite and edit them precisely."""
    raw = _read(ctx.root, path)
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
    base = _existing_base(ctx.root, path)
    files = project_files(ctx.root, base, pattern, ctx.git_env)
    data = {"path": path or ".", "pattern": pattern, "count": len(files)}
    if not files:
        what = f" matching {pattern!r}" if pattern else ""
        return ToolResult(True, f"no files{what} under {path or '.'}", data)
    head = f"{len(files)} file{'s' if len(files) != 1 else ''}"
    if len(files) > MAX_LISTED:
        head += f"; showing the first {MAX_LISTED} (narrow with path or pattern)"
    return ToolResult(True, cap("\n".join([head, *files[:MAX_LISTED]]), ctx.output_limit), data)


def search(ctx: ToolContext, pattern: str, path: str | None = None) -> ToolResult:
    """Lines matching a regex (or the literal text when the regex is invalid), within a time
    budget: a pattern that backtracks catastrophically is stopped, not waited for."""
    if not pattern:
        raise ToolError("pattern is empty; give a regular expression or plain text to find")
    base = _existing_base(ctx.root, path)
    note = ""
    try:
        compiled = regex.compile(pattern)
    except regex.error as exc:
        compiled = regex.compile(regex.escape(pattern))
        note = f"(not a valid regex: {exc}; searched for the literal text)\n"
    budget = SEARCH_SECONDS if ctx.time_left is None else min(SEARCH_SECONDS, ctx.time_left)
    deadline = time.monotonic() + max(budget, 0.1)
    hits: list[str] = []
    total, stopped = 0, False
    for name in project_files(ctx.root, base, None, ctx.git_env):
        try:
            raw = read_regular(ctx.root, name, MAX_READ_BYTES)
        except (OSError, OverflowError, UnsafeFile):
            continue  # links, FIFOs, huge or vanished files are not searched
        if is_binary(raw):
            continue
        try:
            for number, line in enumerate(raw.decode("utf-8", errors="replace").split("\n"), 1):
                if compiled.search(line, timeout=max(deadline - time.monotonic(), 0.001)):
                    total += 1
                    if len(hits) < MAX_HITS:
                        hits.append(f"{name}:{number}: {line.rstrip()[:MAX_HIT_CHARS]}")
        except TimeoutError:
            stopped = True
            break
    data = {
        "pattern": pattern,
        "path": path or ".",
        "matches": total,
        "literal": bool(note),
        "timed_out": stopped,
    }
    if stopped:
        note += (
            f"(search stopped after {budget:g} s: the pattern is too slow, probably nested "
            "repetition such as (a+)+; simplify it or narrow the path; matches so far below)\n"
        )
    if not hits:
        return ToolResult(True, f"{note}no matches for {pattern!r} under {path or '.'}", data)
    more = f"\n[{total - MAX_HITS} more matches not shown; narrow the pattern or path]"
    body = note + "\n".join(hits) + (more if total > MAX_HITS else "")
    return ToolResult(True, cap(body, ctx.output_limit), data)


def write_file(ctx: ToolContext, path: str, content: str) -> ToolResult:
    """Create or overwrite a file; the diff goes to the journal and the commit."""
    name = _lexical(ctx.root, path)
    info = lstat_beneath(ctx.root, name)
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise ToolError(f"{path} is a directory; give a file path")
    old = _old_text(ctx.root, name) if info is not None else ""
    try:
        existed = write_atomic(ctx.root, name, content.encode("utf-8"))
    except IsADirectoryError:
        raise ToolError(f"{path} is a directory; give a file path") from None
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
    name = _lexical(ctx.root, path)
    raw = _read(ctx.root, path, hint="; use write_file to create it")
    try:
        original = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolError(f"{path} is not UTF-8 text; edit_file cannot change it safely") from exc
    crlf = "\r\n" in original
    text = original.replace("\r\n", "\n") if crlf else original
    try:
        change = apply_edit(text, old.replace("\r\n", "\n"), new.replace("\r\n", "\n"))
    except EditError as exc:
        return failure(f"{exc}", category="edit", path=path)
    result = change.text.replace("\n", "\r\n") if crlf else change.text
    write_atomic(ctx.root, name, result.encode("utf-8"))
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


def _lexical(root: Path, path: str) -> str:
    """`path` checked by `resolve_inside`, spelled relative to the worktree, links unresolved
    (safefs refuses them itself rather than follow them)."""
    resolve_inside(root, path)
    rel = os.path.normpath(path).replace(os.sep, "/")
    return "" if rel == "." else rel


def _read(root: Path, path: str, hint: str = "") -> bytes:
    name = _lexical(root, path)
    try:
        return read_regular(root, name, MAX_READ_BYTES)
    except (FileNotFoundError, NotADirectoryError):
        raise ToolError(f"{path} does not exist{hint}") from None
    except IsADirectoryError:
        raise ToolError(f"{path} is a directory; use list_files to see what it holds") from None
    except OverflowError:
        raise ToolError(
            f"{path} is too large to read whole; use search or run_command (sed -n)"
        ) from None


def _existing_base(root: Path, path: str | None) -> Path:
    """The folder (or file) a listing or search starts from; never through a symlink."""
    name = _lexical(root, path or ".")
    info = lstat_beneath(root, name)
    if info is None:
        raise ToolError(f"{path} does not exist")
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeFile(
            f"path '{name}' is a symbolic link; the file tools do not follow links: use the "
            "path the link points to"
        )
    return root / name if name else root


def _old_text(root: Path, name: str) -> str:
    try:
        raw = read_regular(root, name, MAX_READ_BYTES)
    except (OSError, OverflowError):
        return ""
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
