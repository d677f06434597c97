"""Running the project's tests and reading the counts out of whatever runner it uses.

The model mostly needs one line ("3 passed, 1 failed") to decide what to do next, and
the journal wants the numbers; both come from the runner's own summary lines.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from pydantic import Field

from nexus_ls.tools.base import Args, Tool, ToolContext, ToolError, ToolResult, failure
from nexus_ls.tools.shell import command_env, command_result, gate, run_shell, unconfined_env

Counts = tuple[int, int]
PYTEST_CONFIGS = ("pyproject.toml", "setup.cfg", "pytest.ini", "tox.ini", "conftest.py")
_SKIP_DIRS = {"node_modules", "venv", "env", "site-packages", "build", "dist", "target"}
_MAX_SCANNED = 5_000


def detect_test_command(root: Path) -> str | None:
    """The usual test command for the project in `root`, judged by its marker files."""
    if any((root / name).is_file() for name in PYTEST_CONFIGS) or _has_python_tests(root):
        python = "python" if shutil.which("python", path=command_env().get("PATH")) else "python3"
        return f"{python} -m pytest -q"
    if _npm_has_test(root / "package.json"):
        return "npm test"
    if (root / "go.mod").is_file():
        return "go test ./..."
    if (root / "Cargo.toml").is_file():
        return "cargo test"
    for name in ("GNUmakefile", "makefile", "Makefile"):
        makefile = root / name
        if makefile.is_file() and re.search(
            r"^test\s*:", makefile.read_text(errors="replace"), re.MULTILINE
        ):
            return "make test"
    return None


def _has_python_tests(root: Path) -> bool:
    scanned = 0
    for _folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS]
        for name in files:
            if name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py")):
                return True
        scanned += len(files)
        if scanned > _MAX_SCANNED:
            return False
    return False


def _npm_has_test(package: Path) -> bool:
    if not package.is_file():
        return False
    try:
        scripts = json.loads(package.read_text(errors="replace")).get("scripts") or {}
    except (ValueError, AttributeError):
        return False
    test = scripts.get("test") if isinstance(scripts, dict) else None
    # `npm init` writes a test script that only fails; it is not a test suite.
    return isinstance(test, str) and bool(test.strip()) and "no test specified" not in test


def _sum(pairs: list[Counts]) -> Counts | None:
    return (sum(p for p, _ in pairs), sum(f for _, f in pairs)) if pairs else None


def _cargo(text: str) -> Counts | None:
    found = re.findall(r"^test result: \w+\. (\d+) passed; (\d+) failed", text, re.MULTILINE)
    return _sum([(int(p), int(f)) for p, f in found])


def _labelled(line: str) -> dict[str, int]:
    return {label: int(n) for n, label in re.findall(r"(\d+) ([a-z]+)", line)}


def _summary_line(pattern: str) -> Callable[[str], Counts | None]:
    """A parser for runners that print one labelled summary line (jest, vitest)."""

    def parse(text: str) -> Counts | None:
        lines = re.findall(pattern, text, re.MULTILINE)
        if not lines:
            return None
        counts = _labelled(lines[-1])
        return counts.get("passed", 0), counts.get("failed", 0)

    return parse


_jest = _summary_line(r"^Tests:\s+(.*\d+ total.*)$")
_vitest = _summary_line(r"^\s*Tests\s+(.*\(\d+\))\s*$")


def _node(text: str) -> Counts | None:
    passed = re.findall(r"^[#ℹ] pass (\d+)", text, re.MULTILINE)
    failed = re.findall(r"^[#ℹ] fail (\d+)", text, re.MULTILINE)
    if not passed and not failed:
        return None
    return sum(map(int, passed)), sum(map(int, failed))


def _mocha(text: str) -> Counts | None:
    passed = re.findall(r"^\s*(\d+) passing\b", text, re.MULTILINE)
    failed = re.findall(r"^\s*(\d+) failing\b", text, re.MULTILINE)
    if not passed and not failed:
        return None
    return sum(map(int, passed)), sum(map(int, failed))


def _go(text: str) -> Counts | None:
    tests_passed = len(re.findall(r"^--- PASS:", text, re.MULTILINE))
    tests_failed = len(re.findall(r"^--- FAIL:", text, re.MULTILINE))
    packages_ok = len(re.findall(r"^ok\s+\S+", text, re.MULTILINE))
    packages_failed = len(re.findall(r"^FAIL\s+\S+", text, re.MULTILINE))
    if not (tests_passed or tests_failed or packages_ok or packages_failed):
        return None
    # Without -v go prints no line per passing test, only one per passing package.
    return tests_passed or packages_ok, tests_failed or packages_failed


_PYTEST_WORDS = r"passed|failed|errors?|skipped|deselected|xfailed|xpassed|warnings?"
_PYTEST_LINE = re.compile(
    rf"^=*\s*((?:\d+ (?:{_PYTEST_WORDS}),? ?)+|no tests ran) in \d[\d.]*s\b.*$", re.MULTILINE
)


def _pytest(text: str) -> Counts | None:
    lines = _PYTEST_LINE.findall(text)
    if not lines:
        return None
    counts = _labelled(lines[-1])
    errors = counts.get("error", 0) + counts.get("errors", 0)
    return counts.get("passed", 0), counts.get("failed", 0) + errors


# Runners whose summaries also contain "N passed" are tried before pytest's.
PARSERS: tuple[Callable[[str], Counts | None], ...] = (
    _cargo,
    _jest,
    _vitest,
    _node,
    _mocha,
    _go,
    _pytest,
)


def parse_counts(output: str) -> Counts | None:
    """(passed, failed) from a test runner's output, or None if no summary is recognised."""
    for parser in PARSERS:
        counts = parser(output)
        if counts is not None:
            return counts
    return None


def run_tests(ctx: ToolContext, command: str | None = None) -> ToolResult:
    """Run the test suite and report the counts first, then the (capped) output."""
    command = (command or "").strip() or detect_test_command(ctx.root)
    if command is None:
        raise ToolError(
            "no test setup found (pytest, package.json, go.mod, Cargo.toml or a Makefile with "
            'a test target); pass `command`, for example {"command": "./run-tests.sh"}'
        )
    if ctx.cancel is not None and ctx.cancel.is_set():
        return failure("cancelled before the tests started", category="test")
    verdict = gate(ctx, command, False, "test")
    if isinstance(verdict, ToolResult):
        return verdict
    sandbox = None if verdict.unconfined else ctx.sandbox  # the user's rule says so
    outcome = run_shell(
        command, ctx.root, ctx.command_timeout, ctx.output_limit - 300, ctx.cancel, sandbox,
        extra_env=unconfined_env(ctx) if verdict.unconfined else None,
        run_network=ctx.run_network,
    )  # fmt: skip
    counts = parse_counts(outcome.output)
    passed, failed = counts if counts is not None else (None, None)
    data = {
        "command": command,
        "passed": passed,
        "failed": failed,
        "exit_code": outcome.exit_code,
        "duration_ms": outcome.duration_ms,
        "timed_out": outcome.timed_out,
        "output": outcome.output,
    }
    summary = f"{passed} passed, {failed} failed" if counts else "no test counts found"
    head = f"tests: {summary} (exit {outcome.exit_code}) — {command}"
    return command_result(outcome, ctx.command_timeout, head, data, "test", ctx.sandbox, ctx.scrub)


class RunTestsArgs(Args):
    command: str | None = Field(None, description="Test command, e.g. 'pytest -x'.")


def _tests_subject(args: RunTestsArgs, result: ToolResult) -> str:
    return f"run tests{' with `' + args.command[:50] + '`' if args.command else ''}"


TOOLS = (
    Tool(
        "run_tests",
        "Run the project's tests (detected from its files unless `command` is given) and "
        "report how many passed and failed.",
        RunTestsArgs,
        run_tests,
        category="test",
        changes_files=True,
        subject=_tests_subject,
    ),
)
