"""The embedded-model benchmark's tasks: a tiny repository each, and a judge that looks at it.

A run's own summary is what the model claims; the judges check the run's branch instead
(the file runs, the original tests pass) and compare reports with counts measured here.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nexus_ls.sandbox import NEXUS_IDENTITY

Verdict = tuple[bool, str]
Judge = Callable[[Path, dict[str, Any], dict[str, str]], Verdict]

README = "# calc\n\nA tiny calculator.\n"
CALC = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n"
TESTS = (
    "from calc import add, mul\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
    "def test_mul():\n    assert mul(2, 3) == 6\n"
)
BROKEN_ADD = CALC.replace("a + b", "a - b")
BROKEN_DIV = CALC + "\n\ndef div(a, b):\n    return a * b\n"
TESTS_WITH_DIV = TESTS.replace("add, mul", "add, div, mul") + (
    "\n\ndef test_div():\n    assert div(6, 3) == 2\n"
)
BASE = {"README.md": README, "calc.py": CALC, "test_calc.py": TESTS}


@dataclass(frozen=True)
class Task:
    """One task: the words given to `nexus run`, the repository it runs on, and its judge."""

    key: str
    prompt: str
    files: dict[str, str]
    judge: Callable[[Path, dict[str, Any], dict[str, str]], Verdict]


def make_repo(root: Path, files: dict[str, str]) -> None:
    """A fresh git repository holding `files` in one commit."""
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "initial")


def git(cwd: Path, *args: str) -> bytes:
    done = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        env={**os.environ, **NEXUS_IDENTITY},
        capture_output=True,
        check=True,
    )
    return done.stdout


def export(repo: Path, ref: str, dest: Path) -> None:
    """The tree of `ref` written to `dest`, without touching the repository's worktrees."""
    data = git(repo, "archive", "--format=tar", ref)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")


def pytest_in(folder: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _summary(outcome: dict[str, Any]) -> str:
    return str(outcome.get("summary") or "")


def _succeeded(outcome: dict[str, Any]) -> Verdict | None:
    if outcome.get("status") != "succeeded":
        return False, f"run {outcome.get('status')}: {_summary(outcome)[:160]}"
    return None


def judge_list(repo: Path, outcome: dict[str, Any], files: dict[str, str]) -> Verdict:
    failed = _succeeded(outcome)
    if failed:
        return failed
    missing = [name for name in files if name not in _summary(outcome)]
    if missing:
        return False, f"summary leaves out {', '.join(missing)}"
    return True, "names every file"


def judge_explain(repo: Path, outcome: dict[str, Any], files: dict[str, str]) -> Verdict:
    failed = _succeeded(outcome)
    if failed:
        return failed
    text = _summary(outcome).strip()
    if re.search(r"\b(add|sum|plus)", text, re.IGNORECASE):
        return True, f"says: {text[:80]!r}"
    return False, f"summary does not mention add/sum/plus: {text[:120]!r}"


def judge_fix(repo: Path, outcome: dict[str, Any], files: dict[str, str]) -> Verdict:
    """The original tests, put back over the branch's copy, must pass against its code."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            export(repo, str(outcome["branch"]), Path(tmp))
        except (subprocess.CalledProcessError, KeyError):
            return False, "the run left no branch"
        changed = [n for n in files if n.startswith("test_") and _read(Path(tmp) / n) != files[n]]
        for name in changed:
            (Path(tmp) / name).write_text(files[name], encoding="utf-8")
        ran = pytest_in(Path(tmp))
    note = f" (the run changed {', '.join(changed)}; judged with the originals)" if changed else ""
    tail = ran.stdout.strip().splitlines()[-1:] or ["no output"]
    said = re.sub(r" in [\d.]+s\b", "", tail[0].strip("= "))  # no timing: outcomes group
    return ran.returncode == 0, f"pytest on the branch: {said[:100]}{note}"


def judge_report(repo: Path, outcome: dict[str, Any], files: dict[str, str]) -> Verdict:
    """The summary must carry the pass and fail counts that pytest gives on the base commit."""
    failed = _succeeded(outcome)
    if failed:
        return failed
    with tempfile.TemporaryDirectory() as tmp:
        export(repo, "main", Path(tmp))
        out = pytest_in(Path(tmp)).stdout
    counts = {w: _count(out, w) for w in ("passed", "failed")}
    text = _summary(outcome)
    wrong = [f"{n} {w}" for w, n in counts.items() if not _says_count(text, n, w[:4])]
    if wrong:
        return False, f"summary lacks {', '.join(wrong)}: {text[:120]!r}"
    return True, f"reports {counts['passed']} passed, {counts['failed']} failed"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def _count(pytest_output: str, word: str) -> int:
    found = re.search(rf"(\d+) {word}", pytest_output)
    return int(found.group(1)) if found else 0


def _says_count(text: str, n: int, stem: str) -> bool:
    """`n` next to a word starting with `stem`, either way round ("2 passed", "passed: 2")."""
    near = r"[^\d\n]{0,20}"
    pattern = rf"(?<!\d){n}(?!\d){near}{stem}|{stem}{near}(?<!\d){n}(?!\d)"
    return re.search(pattern, text, re.IGNORECASE) is not None


def judge_prints(name: str, wanted: str) -> Judge:
    """`name` must be on the branch and print `wanted` when run."""

    def judge(repo: Path, outcome: dict[str, Any], files: dict[str, str]) -> Verdict:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                export(repo, str(outcome["branch"]), Path(tmp))
            except (subprocess.CalledProcessError, KeyError):
                return False, "the run left no branch"
            if not (Path(tmp) / name).is_file():
                return False, f"no {name} on the branch"
            try:
                ran = subprocess.run(
                    ["python3", name], cwd=tmp, capture_output=True, text=True, timeout=20
                )
            except subprocess.TimeoutExpired:
                return False, f"python3 {name} did not end within 20 s"
        if ran.returncode == 0 and wanted.lower() in ran.stdout.lower():
            return True, f"prints {ran.stdout.strip()[:60]!r}"
        said = (ran.stdout + ran.stderr).strip().splitlines()
        return False, f"{name} exit {ran.returncode}: {(said[-1] if said else 'no output')[:120]}"

    return judge


def judge_appended(name: str, line: str) -> Judge:
    """`name` on the branch must hold `line` and everything it held before."""

    def judge(repo: Path, outcome: dict[str, Any], files: dict[str, str]) -> Verdict:
        try:
            text = git(repo, "show", f"{outcome['branch']}:{name}").decode("utf-8", "replace")
        except (subprocess.CalledProcessError, KeyError):
            return False, f"no {name} on the branch"
        if not text.startswith(files[name].rstrip("\n")):
            return False, f"{name} lost some of its text"
        if line not in text:
            return False, f"{name} does not hold {line!r}"
        return True, f"{name} holds {line!r}"

    return judge


PARITY = "def is_even(n):\n    return n % 2 == 1\n"
PARITY_TESTS = (
    "from parity import is_even\n\n\ndef test_is_even():\n    assert is_even(4)\n"
    "    assert not is_even(3)\n"
)
BIGGEST = "def biggest(a, b):\n    return a if a < b else b\n"
BIGGEST_TESTS = (
    "from pick import biggest\n\n\ndef test_biggest():\n    assert biggest(2, 5) == 5\n"
    "    assert biggest(7, 1) == 7\n"
)
LAST = "def last(items):\n    return items[len(items) - 2]\n"
LAST_TESTS = "from items import last\n\n\ndef test_last():\n    assert last([1, 2, 3]) == 3\n"
DEMO_FILES = {
    name: (Path(__file__).resolve().parent.parent / "nexus_ls" / "demo" / "calc" / name).read_text()
    for name in ("README.md", "calc.py", "test_calc.py")
}
APPENDED = "Run the tests with pytest."

TASKS = (
    Task("demo (nexus demo)", "fix the failing test", DEMO_FILES, judge_fix),
    Task(
        "create greet.py",
        'create greet.py that prints "good morning"',
        BASE,
        judge_prints("greet.py", "good morning"),
    ),
    Task(
        "fix is_even",
        "fix the failing test",
        {"README.md": README, "parity.py": PARITY, "test_parity.py": PARITY_TESTS},
        judge_fix,
    ),
    Task(
        "fix biggest",
        "fix the bug in pick.py",
        {"README.md": README, "pick.py": BIGGEST, "test_pick.py": BIGGEST_TESTS},
        judge_fix,
    ),
    Task(
        "fix last",
        "fix the failing test",
        {"README.md": README, "items.py": LAST, "test_items.py": LAST_TESTS},
        judge_fix,
    ),
    Task(
        "append to README",
        f'add the line "{APPENDED}" to README.md',
        BASE,
        judge_appended("README.md", APPENDED),
    ),
    Task(
        "create hello.py",
        "create hello.py that prints hello",
        BASE,
        judge_prints("hello.py", "hello"),
    ),
    Task("list the files", "list the files", BASE, judge_list),
    Task("explain add", "explain the function add in calc.py", BASE, judge_explain),
    Task(
        "fix failing test",
        "fix the failing test",
        {**BASE, "calc.py": BROKEN_ADD},
        judge_fix,
    ),
    Task(
        "run tests, report",
        "run the tests and report the result",
        {**BASE, "calc.py": BROKEN_DIV, "test_calc.py": TESTS_WITH_DIV},
        judge_report,
    ),
)
