"""Reading, listing and changing the worktree's files (searching is `tools.search`).

Every path is checked by `resolve_inside` (its spelling) and then opened through
`sandbox.safefs` (no symlink followed, regular files only, writes renamed into place),
so a tool can neither read nor write outside the run's worktree. Reads are
bounded in size and time; outputs are capped so one large file cannot flood the model's
context.
"""

from __future__ import annotations

import difflib
import os
import stat
from pathlib import Path
from typing import Any

from pydantic import Field

from nexus_ls.sandbox.paths import resolve_inside
from nexus_ls.sandbox.safefs import UnsafeFile, lstat_beneath, read_regular, write_atomic
from nexus_ls.tools.base import Args, Tool, ToolContext, ToolError, ToolResult, failure
from nexus_ls.tools.editmatch import EditError, Replacement, apply_edit, replace_every
from nexus_ls.tools.listing import is_binary, project_files
from nexus_ls.tools.output import cap, numbered
from nexus_ls.tools.suggest import not_found
from nexus_ls.validation import Strict

MAX_READ_BYTES = 20_000_000
MAX_LISTED = 500
MAX_HIT_CHARS = 240
MAX_DIFF_CHARS = 200_000


def read_file(
    ctx: ToolContext, path: str, start_line: int | None = None, end_line: int | None = None
) -> ToolResult:
    """Numbered lines, so the model can cite and edit them precisely."""
    raw = _read(ctx.root, path, ctx)
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
    body, last = numbered(lines, first, last, ctx.output_limit)
    data = {"path": path, "start_line": first, "end_line": last, "total_lines": total}
    return ToolResult(True, body, data)


def list_files(ctx: ToolContext, path: str | None = None, pattern: str | None = None) -> ToolResult:
    """Project files (as git would list them), optionally filtered by a glob."""
    base = _existing_base(ctx.root, path, ctx.git_env)
    files = project_files(ctx.root, base, pattern, ctx.git_env)
    data = {"path": path or ".", "pattern": pattern, "count": len(files)}
    if not files:
        what = f" matching {pattern!r}" if pattern else ""
        return ToolResult(True, f"no files{what} under {path or '.'}", data)
    head = f"{len(files)} file{'s' if len(files) != 1 else ''}"
    if len(files) > MAX_LISTED:
        head += f"; showing the first {MAX_LISTED} (narrow with path or pattern)"
    return ToolResult(True, cap("\n".join([head, *files[:MAX_LISTED]]), ctx.output_limit), data)


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
        True,
        f"{verb} {name} ({lines} line{'s' * (lines != 1)})",
        data,
        category="edit",
        paths=[name],
    )


def edit_file(
    ctx: ToolContext,
    path: str,
    old: str | None = None,
    new: str | None = None,
    replace_all: bool = False,
    edits: list[dict[str, Any]] | None = None,
) -> ToolResult:
    """Replace `old` by `new` (one place, or every place with `replace_all`), or make each
    of `edits` in order; all of them or none: the file is written only if every one fits."""
    changes = _edit_list(old, new, replace_all, edits)
    name = _lexical(ctx.root, path)
    raw = _read(ctx.root, path, ctx, hint="; use write_file to create it")
    try:
        original = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolError(f"{path} is not UTF-8 text; edit_file cannot change it safely") from exc
    crlf = "\r\n" in original
    text = original.replace("\r\n", "\n") if crlf else original
    done: list[Replacement] = []
    for number, (old_text, new_text, every) in enumerate(changes, 1):
        old_text, new_text = old_text.replace("\r\n", "\n"), new_text.replace("\r\n", "\n")
        try:
            change = (replace_every if every else apply_edit)(text, old_text, new_text)
        except EditError as exc:
            which = f"edit {number} of {len(changes)}: " if len(changes) > 1 else ""
            undone = " (no edit was made; the file is unchanged)" if number > 1 else ""
            return failure(f"{which}{exc}{undone}", category="edit", path=path)
        text = change.text
        done.append(change)
    result = text.replace("\n", "\r\n") if crlf else text
    write_atomic(ctx.root, name, result.encode("utf-8"))
    diff = unified_diff(name, original, result)
    head = f"edited {name}: " + "; ".join(_where(change) for change in done)
    data = {
        "path": name,
        "diff": cap(diff, MAX_DIFF_CHARS),
        "method": "exact" if all(c.method == "exact" for c in done) else "whitespace",
        "start_line": min(c.start_line for c in done),
        "end_line": max(c.end_line for c in done),
        "edits": len(done),
        "replaced": sum(c.count for c in done),
    }
    return ToolResult(
        True, f"{head}\n{cap(diff, 3000)}".rstrip(), data, category="edit", paths=[name]
    )


def _edit_list(
    old: str | None, new: str | None, replace_all: bool, edits: list[dict[str, Any]] | None
) -> list[tuple[str, str, bool]]:
    if edits and (old is not None or new is not None):
        raise ToolError("give either old/new or edits, not both")
    if edits:
        return [(e["old"], e["new"], bool(e.get("replace_all"))) for e in edits]
    if old is None or new is None:
        raise ToolError("give old and new (or edits: a list of {old, new})")
    return [(old, new, replace_all)]


def _where(change: Replacement) -> str:
    if change.count > 1:
        return f"{change.count} places replaced, lines {change.start_line}-{change.end_line}"
    how = "exact match" if change.method == "exact" else "match ignoring whitespace, re-indented"
    return f"lines {change.start_line}-{change.end_line} replaced ({how})"


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


def _read(root: Path, path: str, ctx: ToolContext | None = None, hint: str = "") -> bytes:
    name = _lexical(root, path)
    try:
        return read_regular(root, name, MAX_READ_BYTES)
    except (FileNotFoundError, NotADirectoryError):
        git_env = ctx.git_env if ctx else None
        raise ToolError(not_found(root, path, git_env, hint)) from None
    except IsADirectoryError:
        raise ToolError(f"{path} is a directory; use list_files to see what it holds") from None
    except OverflowError:
        raise ToolError(
            f"{path} is too large to read whole; use search or run_command (sed -n)"
        ) from None


def _existing_base(root: Path, path: str | None, git_env: dict[str, str] | None = None) -> Path:
    """The folder (or file) a listing or search starts from; never through a symlink."""
    name = _lexical(root, path or ".")
    info = lstat_beneath(root, name)
    if info is None:
        raise ToolError(not_found(root, str(path), git_env))
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


_PATH = "File path relative to the project root."
_PATH_DIR = "Folder relative to the project root (default: the whole project)."


class ReadArgs(Args):
    path: str = Field(description=_PATH)
    start_line: int | None = Field(None, ge=1, description="First line to show (1-based).")
    end_line: int | None = Field(None, ge=1, description="Last line to show (inclusive).")


class ListArgs(Args):
    path: str | None = Field(None, description=_PATH_DIR)
    pattern: str | None = Field(None, description="Glob such as '*.py' or 'src/**/*.ts'.")


class WriteArgs(Args):
    path: str = Field(description=_PATH)
    content: str = Field(description="The complete new content of the file.")


class Edit(Strict):
    old: str = Field(description="The exact text to replace.")
    new: str = Field(description="The text to put in its place.")
    replace_all: bool = Field(False, description="Replace every occurrence of old.")


class EditArgs(Args):
    path: str = Field(description=_PATH)
    old: str | None = Field(None, description="The exact text to replace.")
    new: str | None = Field(None, description="The text to put in its place.")
    replace_all: bool = Field(
        False, description="Replace every occurrence of old, not just one unique match."
    )
    edits: list[Edit] | None = Field(
        None,
        description="Several edits of this file, made in order, all or none (instead of old/new).",
    )


def _read_line(args: ReadArgs, result: ToolResult) -> str:
    return f"{args.path} ({len(result.output.splitlines())} lines)"


def _list_line(args: ListArgs, result: ToolResult) -> str:
    return (
        f"{args.path or '.'}{' ' + args.pattern if args.pattern else ''}: "
        + (result.output.splitlines() or [""])[0]
    )


def _edit_subject(args: EditArgs, result: ToolResult) -> str:
    data = result.data
    if not result.ok:
        return f"edit {args.path}"
    lines = f"lines {data.get('start_line')}-{data.get('end_line')}"
    if data.get("replaced", 1) > 1:
        return f"edit {args.path}: {data['replaced']} places, {lines}"
    return f"edit {args.path}: {lines}"


def _write_subject(args: WriteArgs, result: ToolResult) -> str:
    return f"{'create' if result.data.get('created') else 'rewrite'} {args.path}"


TOOLS = (
    Tool(
        "read_file",
        "Read a text file with line numbers. Use start_line/end_line for parts of long files.",
        ReadArgs,
        read_file,
        progress=_read_line,
    ),
    Tool(
        "list_files",
        "List the project's files (ignored files and .git left out), optionally by glob.",
        ListArgs,
        list_files,
        progress=_list_line,
    ),
    Tool(
        "write_file",
        "Create a file or replace its whole content. Prefer edit_file for changes to a file.",
        WriteArgs,
        write_file,
        category="edit",
        changes_files=True,
        subject=_write_subject,
    ),
    Tool(
        "edit_file",
        "Replace text in a file: `old` must match exactly one place (copy it from read_file "
        "output without line numbers, with a few lines of context), or every place with "
        "replace_all; pass `edits` (a list of {old, new}) to make several edits at once, all "
        "or none.",
        EditArgs,
        edit_file,
        category="edit",
        changes_files=True,
        subject=_edit_subject,
    ),
)
