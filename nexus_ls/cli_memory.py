"""`nexus memory`: what the workspace's memory holds, and the user's say over it.

`list`, `show ID`, `add TEXT [--tag T]`, `forget ID`, `export [--json]`. Every change is
journaled (category `memory`) like the host's own; a lesson holding a secret is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nexus_ls.journal import Journal, printable
from nexus_ls.sandbox.repo import Workspace

if TYPE_CHECKING:
    from nexus_ls.memory import Lesson

Command = Callable[[str, str], argparse.ArgumentParser]


def add_memory_parser(command: Command) -> None:
    """Register `nexus memory ACTION` through the CLI's own `command` (which adds `-C`)."""
    p = command("memory", "the workspace's memory: lessons runs learned, and yours")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help: str) -> argparse.ArgumentParser:
        a = actions.add_parser(name, help=help, description=help)
        a.add_argument("-C", dest="dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return a

    a = action("list", "every lesson, strongest first, with its weight and source")
    a.add_argument("--json", action="store_true")
    a = action("show", "one lesson: its text, tags, evidence, weight and uses")
    a.add_argument("id", help="a lesson id, e.g. L3")
    a.add_argument("--json", action="store_true")
    a = action("add", "add a lesson of your own (offered to runs like a learned one)")
    a.add_argument("text")
    a.add_argument("--tag", action="append", default=[], help="a word to find it by (repeatable)")
    a = action("forget", "remove a lesson")
    a.add_argument("id")
    a = action("export", "every lesson, as Markdown (or JSON with --json)")
    a.add_argument("--json", action="store_true")


def cmd_memory(ws: Workspace, args: argparse.Namespace) -> int:
    from nexus_ls.memory import WorkspaceMemory  # here: `nexus log` builds this parser too

    memory = WorkspaceMemory(ws.state_dir, Journal.for_state_dir(ws.state_dir))
    if args.action == "add":
        lesson, new = memory.add(args.text, args.tag)
        print(f"{'added' if new else 'already known, confirmed'} {lesson.id}: {lesson.text}")
    elif args.action == "forget":
        lesson = memory.forget(args.id)
        print(f"forgot {lesson.id}: {printable(lesson.text)}")
    elif args.action == "show":
        lesson = memory.get(args.id)
        print(json.dumps(described(lesson), indent=1) if args.json else show(lesson))
    elif args.action == "list":
        listed(sorted(memory.lessons(), key=lambda lesson: -lesson.strength()), args.json)
    elif args.json:  # export
        print(json.dumps([described(lesson) for lesson in memory.lessons()], indent=1))
    else:
        sys.stdout.write(markdown(memory.lessons()))
    if memory.store.skipped:
        print(f"nexus: skipped {memory.store.skipped} stored entries that are not lessons",
              file=sys.stderr)  # fmt: skip
    return 0


def listed(lessons: list[Lesson], as_json: bool) -> None:
    if as_json:
        print(json.dumps([described(lesson) for lesson in lessons], indent=1))
        return
    if not lessons:
        print("no lessons yet: runs learn them as they end (or `nexus memory add TEXT`)")
    for lesson in lessons:
        faded = "" if lesson.offered() else " (faded: no longer offered)"
        print(printable(f"{lesson.id:<5} {lesson.strength():5.2f}  {lesson.line()}{faded}"))


def described(lesson: Lesson) -> dict[str, Any]:
    """A lesson with its strength now beside its stored weight."""
    return {
        **lesson.to_json(),
        "strength": round(lesson.strength(), 4),
        "offered": lesson.offered(),
    }


def show(lesson: Lesson) -> str:
    from nexus_ls.memory import FLOOR

    rows = [
        ("lesson", lesson.id),
        ("text", lesson.text),
        ("kind", lesson.kind),
        ("tags", ", ".join(lesson.tags) or "-"),
        ("source", lesson.origin()),
        ("weight", f"{lesson.strength():.2f} now ({lesson.weight:.2f} when last confirmed; "
                   f"offered while at least {FLOOR})"),
        ("uses", f"{lesson.uses}" + (f" (last by {', '.join(lesson.used_by[-3:])})"
                                     if lesson.used_by else "")),
        ("created", lesson.created),
        ("confirmed", lesson.last_confirmed),
        ("command", lesson.command or "-"),
        ("evidence", " ".join(lesson.evidence) or "-"),
    ]  # fmt: skip
    return printable("\n".join(f"{name:<10} {value}" for name, value in rows))


def markdown(lessons: list[Lesson]) -> str:
    out = ["# NEXUS memory", ""]
    if not lessons:
        out.append("No lessons yet.")
    for lesson in lessons:
        tags = f" — tags: {', '.join(lesson.tags)}" if lesson.tags else ""
        evidence = ", ".join(lesson.evidence) or "none"
        out.append(
            f"- **{lesson.id}** {lesson.line()}{tags} — weight {lesson.strength():.2f}, "
            f"{lesson.uses} uses, evidence: {evidence}"
        )
    return "\n".join(out) + "\n"
