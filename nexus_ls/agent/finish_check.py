"""Repair at finish: a run that broke tests is told so before it ends.

When the model calls `finish` (with success) after changing files, the project's tests
run in the worktree. A test that fails there and passed at the run's base, or a test the
task names that still fails, holds that finish once: the model is told which tests, with
their failure lines, and may go on. The next `finish` ends the run, and if tests still
fail its outcome says which.

Which failing tests passed at the base is decided cheaply: only those tests (pytest: their
files) run again, in a checkout of the base commit made in the run's private area (never
the user's tree), confined like every command with only that checkout writable, and
removed afterwards whatever happens. A run that changed nothing, a project without a
test command, and a test command the policy does not simply allow cost nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import shlex
import shutil
import stat
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nexus_ls.agent.acting import Emit
from nexus_ls.agent.budget import Budget
from nexus_ls.agent.history import Entry
from nexus_ls.agent.model import tool_arguments
from nexus_ls.errors import NexusError
from nexus_ls.journal.shapes import HeldFinishData, TestCheckData
from nexus_ls.sandbox.repo import git, git_bytes, head_commit
from nexus_ls.tools import get_tool
from nexus_ls.tools.base import ToolContext, ToolResult
from nexus_ls.tools.shell import run_shell
from nexus_ls.tools.testing import detect_test_command, parse_counts

MIN_SECONDS = 5.0  # a check needs at least this much of the run's time left
SHOWN_IDS = 10  # test ids named in one line; the rest are counted
HEAD_CHARS = 2_000  # of failure lines in the notice

NOTICE = (
    "Before you finish: {what}.\n{heads}\nFix {them}, or call finish again to end the run "
    "as it is (its outcome will then say that {these} still {fail})."
)

AFTER_HELD_FINISH = (
    "not run: it came after a finish that was held (see that call's answer); make this call "
    "again in your next answer if you still need it"
)

_RUN_TESTS_HEAD = re.compile(r"tests: [^\n]*\(exit (-?\d+)\) — ")  # `run_tests`' first line
_PYTEST_FAILED = re.compile(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", re.MULTILINE)
_PYTEST_PASSED = re.compile(r"^PASSED (.+?)$", re.MULTILINE)
_GO_FAILED = re.compile(r"^\s*--- FAIL: (\S+)", re.MULTILINE)
_CARGO_FAILED = re.compile(r"^test (\S+) \.\.\. FAILED$", re.MULTILINE)
_PYTEST_SECTION = re.compile(r"^_{3,} (.+?) _{3,}$", re.MULTILINE)
_FAILURE_LINE = re.compile(r"\s*(>|E\s|FAILED|ERROR|--- FAIL|panicked|thread '.*' panicked)")
# Tests a task names: `tests/test_x.py::test_y`, `test_y`, `TestY` (pytest classes, Go).
_NODE_ID = re.compile(r"[\w./-]+\.py::[\w:\[\]./-]+")
_TEST_NAME = re.compile(r"(?<![\w./-])(test_\w+|Test[A-Z]\w*)\b(?!\.\w)")


def failing_tests(output: str) -> list[str]:
    """The ids of failing tests in a runner's output, as it names them (pytest's short
    summary, `go test`'s `--- FAIL:`, cargo's `... FAILED`), in order, once each."""
    found = [m.strip() for m in _PYTEST_FAILED.findall(output)]
    found += _GO_FAILED.findall(output) + _CARGO_FAILED.findall(output)
    return list(dict.fromkeys(f for f in found if f and not f.endswith(":")))


def named_tests(task: str) -> list[str]:
    """The tests a task names, as node ids or bare names."""
    ids = _NODE_ID.findall(task)
    rest = _NODE_ID.sub(" ", task)
    return list(dict.fromkeys([*ids, *_TEST_NAME.findall(rest)]))


def names_match(name: str, test: str) -> bool:
    """Whether the failing test id `test` is the test a task calls `name`."""
    if test == name or test.startswith((f"{name}[", f"{name}/")):
        return True
    if "::" in name:  # a node id: its file failing as a whole counts, as does a param
        return name.startswith(f"{test}::") or test.startswith(f"{name}[")
    parts = test.split("::")
    last = parts[-1].split("[")[0].split("/")[0]
    return last == name or name in parts[1:-1] or test.rsplit(".", 1)[-1] == name


def is_pytest(command: str) -> bool:
    """A plain pytest command line, to which test files can be appended."""
    return bool(re.search(r"\bpy\.?test\b", command)) and not any(c in command for c in ";&|<>`$()")


@dataclass
class TestRun:
    """One run of the test command: in the worktree at finish, or at the base."""

    command: str
    exit_code: int | None
    passed: int | None
    failed: int | None
    failing: list[str]
    output: str  # as printed (capped), for the failure lines and the base's passes
    duration_ms: int
    timed_out: bool
    step: int = 0  # the model's `run_tests` step it was, when it was one

    @property
    def ran(self) -> bool:
        return self.exit_code is not None

    def data(self, check: Literal["finish", "base"], limit: int) -> TestCheckData:
        """What the journal keeps of it."""
        return TestCheckData(
            check=check, command=self.command, passed=self.passed, failed=self.failed,
            exit_code=self.exit_code, duration_ms=self.duration_ms, timed_out=self.timed_out,
            failing=self.failing, output=self.output[-limit:],
        )  # fmt: skip

    def line(self) -> str:
        counts = f"{self.passed} passed, {self.failed} failed" if self.passed is not None else ""
        if self.timed_out:
            return f"timed out after {self.duration_ms / 1000:.0f} s — {self.command}"
        return f"{counts or 'no test counts found'} (exit {self.exit_code}) — {self.command}"


@dataclass
class Findings:
    """What the check found: tests that fail now and passed at the base, tests the task
    names that fail, or (ids unknown) the whole command passing at the base only."""

    run: TestRun
    regressions: list[str] = field(default_factory=list)
    named: list[str] = field(default_factory=list)
    whole: bool = False

    @property
    def failing(self) -> list[str]:
        return list(dict.fromkeys([*self.regressions, *self.named]))

    @property
    def any(self) -> bool:
        return bool(self.failing) or self.whole

    def what(self) -> str:
        """The notice's first words."""
        parts = []
        if self.regressions:
            n = len(self.regressions)
            they = "test that passed at the start of this run now fails" if n == 1 else (
                "tests that passed at the start of this run now fail"
            )  # fmt: skip
            parts.append(f"{n} {they}: {_listed(self.regressions)}")
        if self.whole:
            parts.append(
                f"the test command `{self.run.command}` passed at the start of this run and "
                f"now fails (exit {self.run.exit_code})"
            )
        named = [t for t in self.named if t not in self.regressions]
        if named:
            parts.append(f"the test the task names still fails: {_listed(named)}")
        return "; and ".join(parts)

    def plain(self) -> str:
        """One sentence for the run's outcome."""
        if self.failing:
            return f"Tests still failing at finish: {_listed(self.failing)}."
        return (
            f"Tests still failing at finish: `{self.run.command}` exits {self.run.exit_code}; "
            "it passed at the start of the run."
        )


def _listed(ids: list[str]) -> str:
    shown = ", ".join(ids[:SHOWN_IDS])
    return shown + (f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else "")


class FinishCheck:
    """The check one run makes at each `finish`; it holds at most one."""

    def __init__(self, ctx: ToolContext, budget: Budget, emit: Emit) -> None:
        self.ctx, self.budget, self.emit = ctx, budget, emit
        self.task = ""
        self.base = ctx.base or _head(ctx.root)  # the worktree starts at the base
        self.told = False
        self.still_failing: Findings | None = None  # what the accepted finish left failing
        self._last: tuple[str, Findings | None] | None = None  # (worktree state, findings)
        self._at_base: dict[str, bool] = {}  # test id: passed at the base
        self._base_run: TestRun | None = None  # the whole command at the base

    def at_finish(self, step: int, result: ToolResult, history: list[Entry]) -> str | None:
        """The notice for the model when this finish is held, else None (it ends the run;
        `still_failing` says what it leaves failing). A run that gives up is not checked."""
        self.still_failing = None
        if result.data.get("success", True) is False:
            return None
        findings = self.check(step, history)
        if findings is None or not findings.any:
            return None
        if self.told:
            self.still_failing = findings
            self.emit("WARNING", "test", f"step {step}: finish accepted with tests still "
                      f"failing: {_listed(findings.failing) or findings.run.command}",
                      step=step, data={"failing": findings.failing, "whole": findings.whole,
                                       "command": findings.run.command})  # fmt: skip
            return None
        self.told = True
        heads = _failure_lines(findings.run.output, findings.failing)
        if self.ctx.scrub is not None:
            heads = self.ctx.scrub(heads)
        one = len(findings.failing) == 1 or (findings.whole and not findings.failing)
        words = ("it", "this test", "fails") if one else ("them", "these tests", "fail")
        notice = NOTICE.format(what=findings.what(), heads=heads, **dict(
            zip(("them", "these", "fail"), words, strict=True)))  # fmt: skip
        data = HeldFinishData(
            regressions=findings.regressions,
            named=findings.named,
            whole=findings.whole,
            command=findings.run.command,
            notice=notice,
        )
        self.emit("WARNING", "test", f"step {step}: finish held: {findings.what()}", step=step,
                  data=dict(data))  # fmt: skip
        return notice

    def check(self, step: int, history: list[Entry]) -> Findings | None:
        """Run the tests if the worktree changed since the base (or the last check)."""
        if self.base is None:
            return None
        try:
            state = self._state()
        except (NexusError, OSError):
            return None
        if state is None:  # nothing changed since the base: nothing to check
            return None
        if self._last is not None and self._last[0] == state:
            return self._last[1]
        command = detect_test_command(self.ctx.root) or _last_test_command(history)
        if command is None or not self._allowed(command):
            return None
        run = self._reusable(history, command)
        if run is not None:  # the model ran them on this very state: no need to again
            self.emit("DEBUG", "agent", f"step {step}: tests at finish: as step {run.step} ran "
                      f"them: {run.line()}", step=step)  # fmt: skip
        else:
            run = self._run(command, self.ctx.root, None)
            self.budget.check()  # a cancel or the time limit during the tests ends the run
            if run is None:
                return None
            self.emit("INFO", "test", f"step {step}: tests at finish: {run.line()}", step=step,
                      data=dict(run.data("finish", self.ctx.output_limit)))  # fmt: skip
        findings = None if run.timed_out else self._judge(step, run)
        self.budget.check()
        self._last = (state, findings)
        return findings

    def _reusable(self, history: list[Entry], command: str) -> TestRun | None:
        """The model's own last `run_tests` of `command`, if no call that may change files
        came after it (it may have changed them itself: that was the tests)."""
        for entry in reversed(history):
            call = entry.get("call")
            tool = get_tool(call.name) if entry.get("role") == "tool" and call else None
            if call is None or tool is None or not tool.changes_files:
                continue
            arguments = tool_arguments(call)
            given = arguments.get("command") if isinstance(arguments, dict) else None
            if call.name != "run_tests" or (given and given.split() != command.split()):
                return None
            step = entry.get("step", 0)
            text = self.ctx.outputs.get(step, entry.get("index", 1)) or entry["content"]
            ran = _RUN_TESTS_HEAD.match(text)
            if ran is None:  # refused, timed out, cancelled
                return None
            counts = parse_counts(text)
            return TestRun(
                command, int(ran.group(1)), counts[0] if counts else None,
                counts[1] if counts else None, failing_tests(text), text, 0, False, step,
            )  # fmt: skip
        return None

    def _judge(self, step: int, run: TestRun) -> Findings | None:
        if run.exit_code == 0 and not run.failing:
            return Findings(run)
        named = named_tests(self.task)
        findings = Findings(run, [], [t for t in run.failing if _named(t, named)])
        others = [t for t in run.failing if t not in findings.named]
        if run.failing and is_pytest(run.command):
            self._check_at_base(step, run.command, [t for t in others if t not in self._at_base])
            findings.regressions = [t for t in others if self._at_base.get(t)]
        elif others or not run.failing:
            base = self._whole_at_base(step, run.command)
            if base is not None and base.exit_code == 0:  # every test passed at the base
                findings.regressions = others
                findings.whole = not run.failing
        return findings

    def _check_at_base(self, step: int, command: str, ids: list[str]) -> None:
        """Which of `ids` pass at the base: only their files run there."""
        if not ids:
            return
        with self._base_checkout(step) as folder:
            if folder is None:
                return
            files = [f for f in dict.fromkeys(t.split("::")[0] for t in ids) if _inside(folder, f)]
            passed: set[str] = set()  # no file of theirs at the base: none passed there
            if files:
                line = f"{command} -rA {' '.join(shlex.quote(f) for f in files)}"
                run = self._run(line, folder, folder)
                if run is not None:
                    self._journal_base(step, run)
                if run is None or run.timed_out:
                    return  # not known: asked again at the next finish
                passed = set(_PYTEST_PASSED.findall(run.output))
        for test in ids:
            self._at_base[test] = test in passed or any(
                p.startswith(f"{test}::") or p.startswith(f"{test}[") for p in passed
            )

    def _whole_at_base(self, step: int, command: str) -> TestRun | None:
        if self._base_run is None:
            with self._base_checkout(step) as folder:
                if folder is not None:
                    run = self._run(command, folder, folder)
                    if run is not None:
                        self._journal_base(step, run)
                        self._base_run = None if run.timed_out else run
        return self._base_run

    def _journal_base(self, step: int, run: TestRun) -> None:
        short = (self.base or "")[:12]
        self.emit("INFO", "test", f"step {step}: tests at the base {short}: {run.line()}",
                  step=step, data={**run.data("base", self.ctx.output_limit),
                                   "base": str(self.base)})  # fmt: skip

    def _run(self, command: str, root: Path, base_folder: Path | None) -> TestRun | None:
        """The tests in `root`, confined as the run's commands are (at the base: only that
        checkout writable); None when the run's time is nearly spent."""
        left = self.budget.remaining() - 2  # the run must still be able to end in time
        if left < MIN_SECONDS or (self.ctx.cancel is not None and self.ctx.cancel.is_set()):
            return None
        seconds = min(self.budget.limits.command_timeout, left)
        sandbox, network = self.ctx.sandbox, self.ctx.run_network  # as `run_tests` runs
        if base_folder is not None:  # a network namespace of its own: the run's services
            network = None  # are not the base's to reach
            if sandbox is not None:
                real = os.path.realpath(base_folder)
                sandbox = dataclasses.replace(sandbox, worktree=real, protected=[])
        outcome = run_shell(command, root, seconds, self.ctx.output_limit, self.ctx.cancel,
                            sandbox, run_network=network)  # fmt: skip
        text = outcome.full or outcome.output
        counts = parse_counts(text)
        return TestRun(
            command, outcome.exit_code, counts[0] if counts else None,
            counts[1] if counts else None, failing_tests(text), text, outcome.duration_ms,
            outcome.timed_out,
        )  # fmt: skip

    def _allowed(self, command: str) -> bool:
        """NEXUS asks no one for its own check, nor runs it outside the sandbox."""
        if self.ctx.gate is None:
            return True
        decision = self.ctx.gate.policy.decide(command)
        return decision.action == "allow" and not decision.unconfined

    @contextlib.contextmanager
    def _base_checkout(self, step: int) -> Iterator[Path | None]:
        """The base commit's files in a fresh folder of the run's private area (a temporary
        one without a sandbox), removed afterwards whatever happens."""
        folder = self._checkout(step)
        try:
            yield folder
        finally:
            _remove(folder)

    def _checkout(self, step: int) -> Path | None:
        folder = tar = None
        try:
            folder = Path(tempfile.mkdtemp(prefix="finish-base-", dir=_private_area(self.ctx)))
            tar = folder.with_name(folder.name + ".tar")
            git(self.ctx.root, "archive", "--format=tar", "-o", str(tar), str(self.base),
                env=self.ctx.git_env)  # fmt: skip
            with tarfile.open(tar) as archive:
                if hasattr(tarfile, "tar_filter"):  # refuses absolute and `..` paths
                    archive.extractall(folder, filter="tar")
                else:  # pragma: no cover - an older Python: git's paths are relative anyway
                    archive.extractall(folder)  # noqa: S202
            return folder
        except (NexusError, OSError, tarfile.TarError) as exc:
            self.emit("WARNING", "test", f"step {step}: the base could not be checked out "
                      f"to compare the tests: {exc}", step=step)  # fmt: skip
            _remove(folder)
            return None
        finally:
            _remove(tar)

    def _state(self) -> str | None:
        """A fingerprint of how the worktree differs from the base; None: it does not."""
        root, env = self.ctx.root, self.ctx.git_env
        diff = git_bytes(root, "diff", "--binary", "--no-ext-diff", "--no-textconv",
                         str(self.base), "--", env=env)  # fmt: skip
        untracked = git_bytes(root, "ls-files", "-z", "--others", "--exclude-standard", env=env)
        if not diff and not untracked:
            return None
        digest = hashlib.sha256(diff)
        for name in untracked.split(b"\0"):
            if name:
                with contextlib.suppress(OSError):
                    info = os.lstat(root / os.fsdecode(name))
                    digest.update(b"%s\0%d\0%d\0" % (name, info.st_size, info.st_mtime_ns))
        return digest.hexdigest()


def _inside(folder: Path, name: str) -> bool:
    """Whether a test file named in a runner's output is a file of the checkout (the
    output is the project's to print: a path is not trusted)."""
    path = Path(name)
    return not path.is_absolute() and ".." not in path.parts and (folder / path).is_file()


def _named(test: str, names: list[str]) -> bool:
    return any(names_match(name, test) for name in names)


def _head(root: Path) -> str | None:
    try:
        return head_commit(root)
    except (NexusError, OSError):
        return None


def _last_test_command(history: list[Entry]) -> str | None:
    """The command the model last gave `run_tests`, for a project NEXUS finds none in."""
    for entry in reversed(history):
        call = entry.get("call")
        if entry.get("role") == "tool" and call is not None and call.name == "run_tests":
            arguments = tool_arguments(call)
            command = arguments.get("command") if isinstance(arguments, dict) else None
            if isinstance(command, str) and command.strip():
                return command.strip()
    return None


def _private_area(ctx: ToolContext) -> str | None:
    """Where the base checkout goes: beside the run's private home and /tmp (removed with
    them when the run ends); without a sandbox, the system's temporary folder."""
    if ctx.sandbox is None:
        return None
    area = Path(ctx.sandbox.private_home).parent
    area.mkdir(parents=True, exist_ok=True)
    return str(area)


def _failure_lines(output: str, ids: list[str]) -> str:
    """The lines of a test run that say how the tests `ids` failed (pytest's section of
    each, else every failure line), else the run's end."""
    parts = _PYTEST_SECTION.split(output)  # [before, name, body, name, body, ...]
    wanted = {".".join(t.split("::")[1:]) or t for t in ids}
    sections = zip(parts[1::2], parts[2::2], strict=True)
    chosen = [re.split(r"^={3,}", body, flags=re.M)[0] for name, body in sections if name in wanted]
    lines = "\n".join(chosen).splitlines() if chosen else output.splitlines()
    keep = [line for line in lines if _FAILURE_LINE.match(line)]
    if chosen:
        keep += [m.group(0) for m in _PYTEST_FAILED.finditer(output) if m.group(1) in ids]
    keep = list(dict.fromkeys(keep))
    text = "\n".join(keep) if keep else output
    return text if len(text) <= HEAD_CHARS else "[...]\n" + text[-HEAD_CHARS:]


def _remove(path: Path | None) -> None:
    """Remove a file or folder, even one a test made read-only."""
    if path is None or not os.path.lexists(path):
        return
    if not path.is_dir() or path.is_symlink():
        with contextlib.suppress(OSError):
            path.unlink()
        return

    def writable(function: Any, name: str, _exc: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(name), stat.S_IRWXU)
            os.chmod(name, stat.S_IRWXU)
            function(name)

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=writable)
    else:
        shutil.rmtree(path, onerror=writable)
