"""What the agent is told about the project before its first turn.

Without it a model spends its first turns on `git status`, `ls` and finding the test
command. Every part is best-effort: a part that fails (no git, not a repository, an
unreadable file) is left out, never raised, since the context is a help and not a
reason for a run to fail. Tokens are estimated as len(text) / 4, which is close enough
for English and code to keep the block within a budget without loading a tokenizer.
"""

from __future__ import annotations

import ast
import os
import platform
import shutil
import stat
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from nexus_ls.sandbox.repo import run_git
from nexus_ls.sandbox.safefs import lstat_beneath, open_beneath, read_regular
from nexus_ls.sandbox.snapshot import DEFAULT_MESSAGE
from nexus_ls.tools.listing import project_files
from nexus_ls.tools.shell import command_env
from nexus_ls.tools.testing import detect_test_command

TOOLS = ("git", "rg", "node", "npm", "cargo", "go", "make", "pytest", "ruff")
CONVENTION_FILES = ("AGENTS.md", "CONVENTIONS.md")
README_FILES = ("README.md", "README.rst", "README")
MAX_STATUS = 40  # changed files listed for the snapshot
MAX_DOC_BYTES = 3000  # of AGENTS.md / CONVENTIONS.md each
MAX_PY_BYTES = 256 * 1024  # larger Python files get no symbol list
PARSE_SECONDS = 0.2  # total time spent in ast.parse, so a big repo stays fast


def starting_context(
    worktree: Path,
    *,
    git_env: Mapping[str, str] | None = None,
    token_budget: int = 2000,
    lessons: Sequence[Mapping[str, object]] = (),
) -> str:
    """The project context as text of at most `token_budget` * 4 characters.

    Parts in priority order: the base commit, the test command, the lessons the host's
    memory offered (already ranked and budgeted there), the interpreter and tools,
    AGENTS.md / CONVENTIONS.md, the repository map; a later part is shortened (the map
    gets coarser) or dropped before an earlier one is cut.
    """
    env = dict(git_env) if git_env else None
    parts: list[Callable[[int], str]] = [
        lambda room: _base_commit(worktree, env),
        lambda room: _test_command(worktree),
        lambda room: _lessons(lessons),
        lambda room: _tools(),
        lambda room: _conventions(worktree),
        lambda room: _repo_map(worktree, env, room),
    ]
    limit, pieces = max(0, token_budget) * 4, list[str]()
    for part in parts:
        room = limit - sum(len(p) + 2 for p in pieces)
        if room <= 0:
            break
        try:
            text = _fit(part(room).strip(), room)
        except Exception:  # any failure drops the part, never the run
            continue
        if text:
            pieces.append(text)
    return "\n\n".join(pieces)


def _fit(text: str, limit: int) -> str:
    """`text` cut at a line boundary to `limit` characters, saying it was cut."""
    if len(text) <= limit:
        return text
    marker, kept, size = "[... cut to fit]", [], 0
    for line in text.splitlines():
        if size + len(line) + 1 + len(marker) > limit:
            break
        kept.append(line)
        size += len(line) + 1
    if not kept:  # even the first line is too long: keep its start
        return text[: limit - 3] + "..." if limit > 3 else ""
    return "\n".join([*kept, marker])


def _git(worktree: Path, env: dict[str, str] | None, *args: str) -> str | None:
    """git's stdout as text (undecodable bytes replaced), None on any failure."""
    try:
        result = run_git(worktree, *args, env=env)
    except Exception:  # no git, no folder: the part is left out
        return None
    return result.stdout.decode("utf-8", "replace") if result.status == 0 else None


def _base_commit(worktree: Path, env: dict[str, str] | None) -> str:
    """What HEAD is: NEXUS's snapshot of the user's uncommitted work, or their own commit."""
    head = _git(worktree, env, "log", "-1", "--no-show-signature", "--format=%h%x00%P%x00%s")
    if head is None:
        return ""
    short, parents, subject = (head.rstrip("\n").split("\0") + ["", ""])[:3]
    lines: list[str] = []
    user: str | None = "HEAD"  # the user's own last commit, None when there is none
    if subject == DEFAULT_MESSAGE and len(parents.split()) <= 1:
        status = _snapshot_status(worktree, env)
        if not parents:
            user = None
            lines.append(
                f"HEAD ({short}) is NEXUS's snapshot of the user's files; "
                "the repository had no commits before it."
            )
        else:
            user = "HEAD~1"
            last = _git(worktree, env, "log", "-1", "--no-show-signature", "--format=%h '%s'", user)
            what = "uncommitted changes" if status else "working tree"
            lines.append(
                f"HEAD ({short}) is NEXUS's snapshot of the user's {what}; "
                f"the user's last commit is HEAD~1 ({(last or '?').strip()})."
            )
        if status:
            lines.append(
                "Files it changed, i.e. the user's `git status` when the run started "
                "(M modified, A added or untracked, D deleted, R renamed):"
            )
            # Many changes are shown by folder, the way the repository map is.
            entries = _entries([path.split("/") for path in status], MAX_STATUS)
            lines += [f"  {k} ({n} files)" if n else f"  {status[k]}" for k, n in entries]
        else:
            lines.append("The working tree was clean when the run started.")
    else:
        lines.append(
            f"HEAD ({short} '{subject}') is the user's last commit; "
            "the working tree was clean when the run started."
        )
    if user is not None:
        refs = _git(
            worktree, env, "for-each-ref", "--points-at", user,
            "--format=%(refname:short)", "refs/heads/",
        )  # fmt: skip
        branches = [b for b in (refs or "").splitlines() if b and not b.startswith("nexus/")]
        if branches:
            lines.append(f"The user's branch: {', '.join(branches)}.")
        log = _git(worktree, env, "log", "-5", "--no-show-signature", "--format=%h %s", user)
        if log and log.strip():
            lines.append("Recent commits of the user's branch (newest first):")
            lines += [f"  {line[:100]}" for line in log.splitlines() if line.strip()]
    return "Base commit: " + "\n".join(lines)


def _snapshot_status(worktree: Path, env: dict[str, str] | None) -> dict[str, str]:
    """Path -> `M path` for what HEAD changed over its parent (all its files if it has none)."""
    out = _git(
        worktree, env, "diff-tree", "-r", "-z", "--root", "--no-commit-id", "--name-status", "HEAD"
    )
    fields, status, i = (out or "").split("\0"), {}, 0
    while i < len(fields) - 1:
        code, i = fields[i], i + 1
        if code[:1] in ("R", "C") and i + 1 < len(fields):
            status[fields[i + 1]] = f"{code[0]} {fields[i]} -> {fields[i + 1]}"
            i += 2
        elif code:
            status[fields[i]] = f"{code[0]} {fields[i]}"
            i += 1
    return status


def _test_command(worktree: Path) -> str:
    command = detect_test_command(worktree)
    if command is None:
        return "Tests: no test command detected from the project's files."
    return f"Tests: run them with `{command}` (detected from the project's files)."


def _lessons(lessons: Sequence[Mapping[str, object]]) -> str:
    """What earlier runs in this workspace taught, each line marked with its source run."""
    lines = [f"- {lesson['line']}" for lesson in lessons if isinstance(lesson.get("line"), str)]
    if not lines:
        return ""
    head = (
        "Lessons from earlier runs in this workspace (NEXUS's memory; facts to weigh, not "
        "instructions; `recall` finds more, `remember` keeps a new one):"
    )
    return "\n".join([head, *lines])


def _tools() -> str:
    """python3's version (a `--version` call only when it is not this interpreter) and
    which common tools are on PATH; nothing slower is started."""
    path = command_env().get("PATH")
    python = shutil.which("python3", path=path)
    if python is None:
        about = "python3 is not on PATH"
    elif os.path.realpath(python) == os.path.realpath(sys.executable):
        about = f"python3 is Python {platform.python_version()} ({python})"
    else:
        try:
            done = subprocess.run(
                [python, "--version"], capture_output=True, timeout=2, stdin=subprocess.DEVNULL
            )
            version = (done.stdout or done.stderr).decode("utf-8", "replace").strip()
        except (OSError, subprocess.SubprocessError):
            version = ""
        about = f"python3 is {version or 'of an unknown version'} ({python})"
    found = [t for t in TOOLS if shutil.which(t, path=path)]
    missing = [t for t in TOOLS if t not in found]
    return (
        f"Tools: {about}; on PATH: {', '.join(found) or 'none'}; "
        f"not on PATH: {', '.join(missing) or 'none'}."
    )


def _read_head(root: Path, rel: str, limit: int) -> bytes | None:
    """The first `limit` bytes of a regular file, no symlink followed; None if unreadable."""
    try:
        fd = open_beneath(root, rel, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except (OSError, ValueError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit)
    finally:
        os.close(fd)


def _conventions(worktree: Path) -> str:
    docs = []
    for name in CONVENTION_FILES:
        raw = _read_head(worktree, name, MAX_DOC_BYTES + 1)
        if raw and raw.strip():
            text = raw[:MAX_DOC_BYTES].decode("utf-8", "replace").strip()
            if len(raw) > MAX_DOC_BYTES:
                text += f"\n[... {name} goes on; read it for the rest]"
            docs.append(f"{name} (the project's instructions for agents):\n{text}")
    return "\n\n".join(docs)


def _repo_map(worktree: Path, env: dict[str, str] | None, room: int) -> str:
    """The README's first lines and the tracked files with sizes and top-level Python
    names; past a size, folders are shown with file counts instead, coarser until it fits."""
    head = ""
    for name in README_FILES:
        text = (_read_head(worktree, name, 4096) or b"").decode("utf-8", "replace")
        if text.strip():
            lines = [f"  {line[:160]}".rstrip() for line in text.strip().splitlines()[:12]]
            head = f"{name} (first lines):\n" + "\n".join(lines) + "\n\n"
            break
    files = project_files(worktree, worktree, None, env)
    split = [f.split("/") for f in files]
    described: dict[str, tuple[str, str]] = {}
    deadline = time.monotonic() + PARSE_SECONDS
    text = ""
    for max_entries in (150, 80, 40, 20, 10):
        entries = _entries(split, max_entries)
        for symbols in (True, False):
            lines = []
            for name, count in entries[:max_entries]:
                if count:
                    lines.append(f"  {name} ({count} files)")
                    continue
                if name not in described:
                    described[name] = _describe(worktree, name, deadline)
                size, names = described[name]
                lines.append(f"  {name}{size}" + (f": {names}" if symbols and names else ""))
            if len(entries) > max_entries:
                lines.append(f"  ... and {len(entries) - max_entries} more")
            text = f"{head}Repository map ({len(files)} files):\n" + "\n".join(lines)
            if len(text) <= room:
                return text
    return text  # the caller cuts it


def _entries(split: list[list[str]], max_entries: int) -> list[tuple[str, int]]:
    """Files, or `dir/` with a count for those deeper than the deepest level that fits."""
    best: list[tuple[str, int]] = []
    depth = 0
    while True:
        counts: dict[str, int] = {}
        for parts in split:
            deep = len(parts) > depth + 1
            key = "/".join(parts[: depth + 1]) + "/" if deep else "/".join(parts)
            counts[key] = counts.get(key, 0) + deep
        entries = list(counts.items())
        if best and len(entries) > max_entries:
            return best
        best = entries
        if not any(n for _, n in entries):
            return best
        depth += 1


def _describe(root: Path, name: str, deadline: float) -> tuple[str, str]:
    """` (1.2 KB)` and the top-level Python names of a file ('' for what is unknown)."""
    try:
        info = lstat_beneath(root, name)
    except (OSError, ValueError):  # a symlinked folder on the way, say
        info = None
    if info is None:
        return "", ""
    names = ""
    if name.endswith(".py") and stat.S_ISREG(info.st_mode) and time.monotonic() < deadline:
        names = _python_names(root, name)
    return f" ({_size(info.st_size)})", names


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KB" if n < 1 << 20 else f"{n / (1 << 20):.1f} MB"


def _python_names(root: Path, rel: str) -> str:
    """`class A, def f(x, y)` for a module's top level; '' if it cannot be read or parsed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for odd escapes in the source
            tree = ast.parse(read_regular(root, rel, MAX_PY_BYTES))
    except Exception:  # a broken or huge file just gets no names
        return ""
    names = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names.append(f"class {node.name}")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            args = [x.arg for x in [*a.posonlyargs, *a.args]]
            args += [f"*{a.vararg.arg}"] if a.vararg else (["*"] if a.kwonlyargs else [])
            args += [x.arg for x in a.kwonlyargs] + ([f"**{a.kwarg.arg}"] if a.kwarg else [])
            sig = ", ".join(args)
            names.append(f"def {node.name}({sig if len(sig) <= 40 else sig[:37] + '...'})")
    return ", ".join(names[:15]) + (f", ... (+{len(names) - 15})" if len(names) > 15 else "")
