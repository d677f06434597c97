"""What kind of task a guided run is, judged by the harness from the words and the worktree.

Tiny models cannot plan, so the harness does: a task that names a missing file and says
"create" is a file to write, "fix" with a test suite is a bug to fix, and so on. Only
what the harness cannot know is left to the model.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from nexus_ls.sandbox.paths import PathEscape, resolve_inside
from nexus_ls.sandbox.safefs import lstat_beneath, read_regular
from nexus_ls.tools.testing import detect_test_command

MAX_SUSPECT_BYTES = 2_000_000


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


EXTENSIONS = _words(
    "py js mjs ts tsx jsx json md txt rst toml yaml yml ini cfg csv html css sh c h cpp hpp "
    "go rs java kt rb php lua sql xml"
)
CREATE_WORDS = _words("create write make add generate new produce")
APPEND_WORDS = _words("add append insert put write")
DOCUMENTS = _words("md txt rst adoc org")
FIX_WORDS = _words("fix fixes bug bugs failing fails broken error errors repair")
TEST_WORDS = _words("test tests pytest testsuite")
RUN_WORDS = _words("run execute report")
EXPLAIN_WORDS = _words("explain explains describe summarize summarise what how")

_FILE = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w-][\w.-]*\.([A-Za-z]\w{0,7}))(?![\w/])")
_SYMBOL = re.compile(
    r"(?:\b(?:function|method|class|def)\s+`?([A-Za-z_]\w*)`?)|`([A-Za-z_]\w*)(?:\(\))?`"
    r"|\b([A-Za-z_]\w*)\(\)"
)
_GLOB = re.compile(r"(?<!\S)([\w./-]*\*[\w.*/-]*)")
_OUTPUT_PATH = re.compile(r"([\w./-]+\.[A-Za-z]\w{0,7})(?::(\d+)|\", line (\d+)|::)")
_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))", re.MULTILINE)


@dataclass
class Plan:
    """The kind of task and what the harness found for it (a file, a symbol, a glob)."""

    kind: str
    target: str | None = None
    symbol: str | None = None
    pattern: str | None = None
    text: str | None = None  # for `append`: the text the task quotes

    def describe(self) -> str:
        extra = [f"{k} {v}" for k, v in (("file", self.target), ("symbol", self.symbol)) if v]
        return self.kind.replace("_", " ") + (f" ({', '.join(extra)})" if extra else "")


def classify(task: str, root: Path, context: str = "") -> Plan:
    """The plan for `task` in the worktree `root`; `generic` when no rule fits."""
    words = set(re.findall(r"[a-z]+", task.lower()))
    named = named_files(task, root)
    existing = [n for n in named if (root / n).is_file()]
    missing = [n for n in named if not (root / n).exists()]
    if words & FIX_WORDS and detect_test_command(root):
        sources = [n for n in existing if not is_test(n)]
        return Plan("fix", target=sources[0] if sources else None)
    if missing and words & CREATE_WORDS:
        return Plan("create", target=missing[0])
    if words & TEST_WORDS and words & RUN_WORDS and not words & CREATE_WORDS:
        return Plan("run_tests")
    symbol = find_symbol(task, named)
    if words & EXPLAIN_WORDS and (existing or symbol or context.strip()):
        return Plan("explain", target=existing[0] if existing else None, symbol=symbol)
    documents = [n for n in existing if n.rsplit(".", 1)[-1].lower() in DOCUMENTS]
    to_add = text_to_add(task)
    if documents and to_add:
        return Plan("append", target=documents[0], text=to_add)
    if "list" in words or ("files" in words and words & {"which", "what", "show"}):
        glob = _GLOB.search(task)
        return Plan("list", pattern=glob.group(1) if glob else None)
    return Plan("generic")


_QUOTED = re.compile(r"\"([^\"]+)\"|“([^”]+)”|(?<!\w)'(.+?)'(?!\w)|`([^`]+)`")
_PRINTS = re.compile(r"\bprints?\s+(?:out\s+)?(?:the\s+(?:text|word|line)\s+)?(\S+)", re.I)
# an append verb, a few words, then the quoted text: `add the line "..." to README.md`
_ADD_QUOTED = re.compile(
    r"\b(?:add|append|insert|put|write)\b(?:\s+[\w-]+){0,4}\s+(?:\"([^\"]+)\"|“([^”]+)”|'(.+?)'(?!\w))",
    re.I,
)


def quoted_text(task: str) -> str | None:
    """The first text in quotes (or backquotes) that is not a file name the task names."""
    for match in _QUOTED.finditer(task):
        text = next(g for g in match.groups() if g)
        if text.strip() and not _FILE.fullmatch(text.strip()):
            return text
    return None


def text_to_add(task: str) -> str | None:
    """The text a task asks to add to a document, quoted right after the verb (not a
    backquoted name: "add a docstring to `add`" is no text to add)."""
    found = _ADD_QUOTED.search(task)
    return next((g for g in found.groups() if g), None) if found else None


def expected_output(task: str) -> str | None:
    """What the task says a new program prints, so a candidate that runs but prints
    something else is not taken for working: the quoted text after "print(s)", or the one
    word after it when the task ends there (`prints hello`; "prints numbers 1 to 10" says
    no literal text)."""
    found = _PRINTS.search(task)
    if not found:
        return None
    quoted = quoted_text(task[found.start() :])
    if quoted:
        return quoted
    word = found.group(1).strip(".,;:!?\"'“”`")
    ends = task[found.end() :].strip(" .!") == ""
    return word if ends and word.lower() not in {"a", "an", "the", "it", "its", "out"} else None


def plain_text(content: str) -> bool:
    """Prose where a program was asked for: one short line that does not parse as Python
    (a tiny model asked for `hello.py` often answers `Hello, World!`)."""
    lines = [line for line in content.splitlines() if line.strip()]
    if len(lines) != 1 or len(lines[0]) > 200:
        return False
    try:
        compile(lines[0], "<candidate>", "exec")
    except SyntaxError:
        return True
    return False


def named_files(task: str, root: Path) -> list[str]:
    """Paths inside `root` written in the task: existing files, or names with a known extension."""
    found: list[str] = []
    for match in _FILE.finditer(task):
        name = match.group(1).removeprefix("./")
        try:
            inside = bool(resolve_inside(root, name))
        except PathEscape:
            inside = False
        if (
            inside
            and name not in found
            and (match.group(2) in EXTENSIONS or (root / name).exists())
        ):
            found.append(name)
    return found


def find_symbol(task: str, named: list[str]) -> str | None:
    """A function or class name the task points at (`add()`, "function add", `add`)."""
    for match in _SYMBOL.finditer(task):
        name = next(g for g in match.groups() if g)
        if not any(name in n for n in named):
            return name
    return None


def definition_pattern(symbol: str) -> str:
    """A `search` regex for the line that defines `symbol` in common languages."""
    return rf"^\s*(async\s+)?(def|class|function|func|fn)\s+{re.escape(symbol)}\b"


def is_test(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return (
        name.startswith("test_")
        or name.endswith(("_test.py", "_test.go"))
        or ".test." in name
        or ".spec." in name
        or "tests/" in f"/{path}"
    )


def _safe_file(root: Path, name: str) -> bool:
    """A regular file inside the worktree, reached without a symlink."""
    try:
        resolve_inside(root, name)
        info = lstat_beneath(root, name)
    except (PathEscape, OSError):
        return False
    return info is not None and stat.S_ISREG(info.st_mode)


def suspects(root: Path, output: str) -> list[str]:
    """Files a failing test run points at: code before tests, then what failing tests import."""
    real_root = os.path.realpath(root)
    seen: list[str] = []
    for match in _OUTPUT_PATH.finditer(output):
        name = match.group(1)
        if os.path.isabs(name):
            name = os.path.relpath(os.path.realpath(name), real_root)
        name = os.path.normpath(name)
        if _safe_file(root, name) and name not in seen:
            seen.append(name)
    for test in [n for n in seen if is_test(n) and n.endswith(".py")]:
        try:  # the test output is the model's (a command's): read only what is safe
            text = read_regular(root, test, MAX_SUSPECT_BYTES).decode("utf-8", "replace")
        except (OSError, OverflowError, PathEscape):
            continue
        for match in _IMPORT.finditer(text):
            module = (match.group(1) or match.group(2)).replace(".", "/")
            for name in (f"{module}.py", f"{module}/__init__.py"):
                if (root / name).is_file() and name not in seen:
                    seen.append(name)
    return [n for n in seen if not is_test(n)] + [n for n in seen if is_test(n)]


def focus_line(output: str, path: str) -> int | None:
    """The first line number the test output gives for `path`, if any."""
    for match in _OUTPUT_PATH.finditer(output):
        name = match.group(1)
        if (name == path or name.endswith("/" + path)) and (match.group(2) or match.group(3)):
            return int(match.group(2) or match.group(3))
    return None


def window(text: str, focus: int | None, size: int = 150) -> tuple[int, list[str]]:
    """(first line number, lines) of at most `size` lines of `text`, around `focus`."""
    lines = text.splitlines()
    start = 0 if focus is None else max(0, min(focus - size // 2, len(lines) - size))
    return start + 1, lines[start : start + size]


def editable_lines(shown: list[str], text: str) -> list[str]:
    """The shown non-blank lines found exactly once in `text`, so replacing one is unambiguous."""
    return [line for line in shown if line.strip() and text.count(line) == 1]
