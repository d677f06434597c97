"""Lessons read out of a finished run's journal events, without the model being asked.

The rules read the events the agent already journals (`journal/shapes.py`): a tool call's
facts sit under `data.details` (`command`, `exit_code`, `output`, and for `run_tests`
`passed`/`failed`), a step's commit is an `edit` event with `data.commit`, and the starting
context is the `agent` event with `data.starting_context`. What they learn:

- the test command that worked (a test run with no failure, exit 0);
- a command that failed for a reason of the environment (not found, a missing module or
  library) and the similar command that then ran;
- for a test command that failed and later passed, the files and commit subjects between;
- the project's conventions: its AGENTS.md / CONVENTIONS.md, the test command detected;
- a run the user accepted or discarded (`review`).

Every rule is a pure function of the events, so the same journal always teaches the same.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

Event = Mapping[str, Any]
COMMAND_TOOLS = ("run_command", "run_tests")
TEST_WORDS = re.compile(
    r"(?:^|[\s/])(?:pytest|py\.test|unittest|tox|nox|jest|vitest|mocha)\b|"
    r"\b(?:npm|yarn|pnpm) (?:run )?test\b|\b(?:go|cargo|mix|dotnet) test\b|\bmake (?:test|check)\b"
)
# Why a command failed, when the environment made it fail: (pattern, reason with \1).
ENVIRONMENT = tuple(
    (re.compile(pattern, re.MULTILINE), reason)
    for pattern, reason in (
        (r"(?:^|: )([\w./+-]+): (?:command )?not found\s*$", r"\1: command not found"),
        (r"No module named '?([\w.]+)'?", r"no module named \1"),
        (r"Cannot find module '([^']+)'", r"cannot find module \1"),
        (r"error while loading shared libraries: ([^:\s]+)", r"missing shared library \1"),
    )
)
FAILED_TESTS = re.compile(r"^(?:FAILED|ERROR) (\S+)|^--- FAIL: (\S+)|^test (\S+) \.\.\. FAILED",
                          re.MULTILINE)  # fmt: skip
DETECTED = re.compile(r"^Tests: run them with `([^`\n]+)` \(detected", re.MULTILINE)
CONVENTIONS = re.compile(
    r"^(AGENTS\.md|CONVENTIONS\.md) \(the project's instructions for agents\):\n(.+)$",
    re.MULTILINE,
)
MAX_QUOTE = 160


@dataclass
class Learned:
    """A lesson a run taught; one `key` is one lesson, however often it is learned."""

    key: str
    kind: str
    text: str
    tags: list[str]
    evidence: list[str]
    command: str | None = None
    # Learned again, the stored lesson is `confirmed` (its weight rises), `seen again` (it
    # stops fading; a file read again proves little), or left as it is (None).
    again: str | None = "confirmed"


@dataclass
class Findings:
    """What a run's events teach, and what they say of lessons already known."""

    learned: list[Learned] = field(default_factory=list)
    worked: dict[str, str] = field(default_factory=dict)  # command -> the event saying so
    failed: dict[str, tuple[str, str]] = field(default_factory=dict)  # command -> (why, event)
    tests_passed: bool | None = None  # how the run's last test run ended (None: none ran)


@dataclass
class Ran:
    """One command a run ran (`run_command` or `run_tests`), as its event tells it."""

    event: str
    command: str
    exit_code: int | None
    output: str
    is_test: bool
    passed: int | None
    failed: int | None
    environment: str | None  # why the environment made it fail, if it did

    @property
    def ran(self) -> bool:
        """It started and finished by itself (whatever it reported)."""
        return self.exit_code is not None and self.environment is None

    @property
    def green(self) -> bool:
        return self.exit_code == 0 and not self.failed and self.environment is None

    @property
    def red(self) -> bool:
        """Tests that ran and failed (not a missing runner, not a timeout)."""
        return self.ran and (bool(self.failed) or self.exit_code != 0)


def environment_reason(exit_code: int | None, output: str) -> str | None:
    """Why the environment (not the code) made a command fail, or None."""
    if exit_code in (None, 0):
        return None
    for pattern, reason in ENVIRONMENT:
        match = pattern.search(output)
        if match:
            return match.expand(reason)
    if exit_code == 127:
        return "command not found"
    if exit_code == 126:
        return "not executable"
    return None


def commands(events: Sequence[Event]) -> list[Ran]:
    """The commands of a run, in order."""
    found = []
    for event in events:
        data = event.get("data")
        if not isinstance(data, Mapping) or data.get("tool") not in COMMAND_TOOLS:
            continue
        details = data.get("details")
        if not isinstance(details, Mapping) or not isinstance(details.get("command"), str):
            continue
        code = details.get("exit_code")
        code = code if isinstance(code, int) and not isinstance(code, bool) else None
        output = str(details.get("output") or "")
        command = " ".join(details["command"].split())
        is_test = data.get("tool") == "run_tests" or bool(TEST_WORDS.search(command))
        found.append(
            Ran(
                str(event.get("id") or ""), command, code, output, is_test,
                _count(details.get("passed")), _count(details.get("failed")),
                environment_reason(code, output),
            )
        )  # fmt: skip
    return found


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def similar(failed: str, other: str) -> bool:
    """Whether `other` looks like another way of doing what `failed` tried: it names the
    failed program (`pytestx` / `python -m pytest`), or most of the line is the same."""
    if failed == other:
        return False
    program = failed.split()[0].rsplit("/", 1)[-1] if failed.split() else ""
    if len(program) >= 3:
        for word in other.split():
            word = word.rsplit("/", 1)[-1]
            if len(word) >= 3 and (word in program or program in word):
                return True
    return SequenceMatcher(None, failed, other).ratio() >= 0.5


def learn(events: Sequence[Event]) -> Findings:
    """Every lesson a finished run's events teach (in the order the run learned them)."""
    ran = commands(events)
    findings = Findings()
    for item in ran:
        if item.environment is not None:
            findings.failed[item.command] = (item.environment, item.event)
        elif item.exit_code == 0:
            findings.worked[item.command] = item.event
    tests = [item for item in ran if item.is_test and item.exit_code is not None]
    if tests:
        findings.tests_passed = tests[-1].green
    learned: list[Learned] = []
    learned += environment_fixes(ran)
    learned += test_commands(ran)
    learned += fixes(ran, events)
    learned += conventions(events, {item.command for item in ran if item.is_test and item.green})
    findings.learned = list({lesson.key: lesson for lesson in learned}.values())
    return findings


def test_commands(ran: Sequence[Ran]) -> list[Learned]:
    green = {item.command: item for item in ran if item.is_test and item.green}
    return [
        Learned(
            f"test-command:{command}",
            "test-command",
            f"Tests run with `{command}`",
            ["test", "command"],
            [item.event],
            command,
        )
        for command, item in green.items()
    ]


def environment_fixes(ran: Sequence[Ran]) -> list[Learned]:
    found = []
    for n, item in enumerate(ran):
        if item.environment is None:
            continue
        variant = next((later for later in ran[n + 1 :]
                        if later.ran and similar(item.command, later.command)), None)  # fmt: skip
        if variant is None:
            continue
        how = "works" if variant.exit_code == 0 else f"runs (exit {variant.exit_code})"
        text = (
            f"`{_short(item.command)}` fails here ({item.environment}); "
            f"`{_short(variant.command)}` {how} instead"
        )
        programs = [c.split()[0].rsplit("/", 1)[-1] for c in (item.command, variant.command)]
        tags = ["command", "environment", *dict.fromkeys(programs)]
        found.append(Learned(f"environment:{item.command}", "environment", text, tags,
                             [item.event, variant.event], variant.command))  # fmt: skip
    return found


def fixes(ran: Sequence[Ran], events: Sequence[Event]) -> list[Learned]:
    """A test command that failed, then passed (it, or one like it: `python3 -m pytest` then
    `run_tests`'s `python -m pytest`): what the commits between them changed."""
    position = {str(e.get("id")): n for n, e in enumerate(events) if e.get("id")}
    found = []
    for n, red in enumerate(ran):
        if not (red.is_test and red.red):
            continue
        green = next((later for later in ran[n + 1 :] if later.is_test and later.green
                      and (later.command == red.command or similar(red.command, later.command))),
                     None)  # fmt: skip
        if green is None or red.event not in position or green.event not in position:
            continue
        between = events[position[red.event] + 1 : position[green.event]]
        commits = [e for e in between if isinstance(e.get("data"), Mapping)
                   and e["data"].get("commit") and e.get("category") == "edit"]  # fmt: skip
        if not commits:
            continue
        files = list(dict.fromkeys(f for e in commits for f in e["data"].get("files") or []))
        subjects = list(dict.fromkeys(str(e["data"].get("subject") or "") for e in commits))
        tests = failing_tests(red.output)
        what = f" ({', '.join(tests)})" if tests else ""
        change = "; ".join(s for s in subjects if s) or "see the run's commits"
        text = (
            f"`{_short(red.command)}` failed{what} and passed after a change to "
            f"{', '.join(files[:5]) or 'the project'}: {_short(change)}"
        )
        tags = ["fix", "test", *files[:5], *[t.split("::")[-1] for t in tests]]
        key = f"fix:{','.join(sorted(files))}:{','.join(sorted(tests))}"
        evidence = [red.event, *(str(e.get("id")) for e in commits), green.event]
        found.append(Learned(key, "fix", text, tags, evidence, None))
    return found


def failing_tests(output: str, limit: int = 3) -> list[str]:
    names = [next(g for g in match.groups() if g) for match in FAILED_TESTS.finditer(output)]
    return list(dict.fromkeys(names))[:limit]


def conventions(events: Sequence[Event], seen_green: set[str]) -> list[Learned]:
    """The project's instructions for agents and its detected test command, from the
    starting context the run was given (made from the run's base, before any model turn)."""
    found = []
    for event in events:
        data = event.get("data")
        starting = data.get("starting_context") if isinstance(data, Mapping) else None
        if event.get("category") != "agent" or not isinstance(starting, str):
            continue
        evidence = [str(event.get("id") or "")]
        for name, first in CONVENTIONS.findall(starting):
            quote = _short(first.strip(), MAX_QUOTE)
            text = f"The project's {name} gives instructions for agents; it starts: {quote}"
            tags = ["convention", name]
            found.append(Learned(f"convention:{name}", "convention", text, tags, evidence,
                                 again="seen again"))  # fmt: skip
        for command in DETECTED.findall(starting):
            command = " ".join(command.split())
            if command in seen_green:
                continue  # the test-command lesson says more
            text = (
                f"Tests run with `{command}` (detected from the project's files, "
                "not yet seen passing)"
            )
            tags = ["test", "command", "convention"]
            found.append(Learned(f"test-command:{command}", "test-command", text, tags,
                                 evidence, command, again=None))  # fmt: skip
        break
    return found


def review(
    run_id: str,
    task: str,
    verdict: str,
    files: Sequence[str],
    subjects: Sequence[str],
    evidence: Sequence[str],
) -> Learned:
    """What the user's accept or discard of a run says, for runs on similar tasks."""
    change = "; ".join(s for s in subjects if s)
    if files:
        what = f"the change to {', '.join(files[:5])}" + (f" ({_short(change)})" if change else "")
    else:
        what = "a run that changed no file"
    text = f"The user {verdict} {what}, for the task “{_short(task, 120)}”"
    return Learned(f"review:{run_id}", "review", text, ["review", verdict, *files[:5]],
                   list(evidence))  # fmt: skip


def _short(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
