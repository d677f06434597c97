"""The `nexus` command line: the same core as the language server, without an editor.

Exit codes: 0 success, 1 a run that did not succeed, 2 a usage or configuration
problem (with a message that says how to fix it).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from nexus_ls import __version__
from nexus_ls.acp import add_acp_parser
from nexus_ls.errors import NexusError
from nexus_ls.journal import CATEGORIES, Journal, format_line, json_safe, parse_since, printable
from nexus_ls.sandbox.repo import Workspace, git, open_workspace

if TYPE_CHECKING:
    from nexus_ls.run_recovery import Damaged, Orphan
    from nexus_ls.runs import RunRecord

# Each command imports what only it needs when it runs, and the parser builds the flags of
# the command asked for only: `nexus log` starts in a fraction of what `nexus run` needs.

COMMANDS = frozenset(
    [
        "run",
        "demo",
        "runs",
        "show",
        "diff",
        "accept",
        "discard",
        "log",
        "export",
        "memory",
        "acp",
        "serve",
    ]
)
PROGRESS_CATEGORIES = frozenset({"run", "tool", "edit", "command", "test", "agent", "error"})


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every command; the run flags (whose defaults need the run's modules) only for `only`
    when it is given, or for all."""

    def run_flags(p: argparse.ArgumentParser, name: str) -> None:
        if only in (None, name):
            from nexus_ls.run_flags import add_run_flags

            add_run_flags(p)

    parser = argparse.ArgumentParser(prog="nexus", description="Real AI agents in git sandboxes.")
    parser.add_argument("--version", action="version", version=f"nexus {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        if only not in (None, name):
            return cast(argparse.ArgumentParser, _Unasked())
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("-C", dest="dir", default=".", help="the workspace (default: here)")
        return p

    p = command("run", "run one agent on a task to the end")
    p.add_argument("task")
    p.add_argument("--file", help="a file the task is about (its text goes to the agent)")
    p.add_argument("--lines", help="A:B, the lines of --file the task is about")
    run_flags(p, "run")
    if only in (None, "demo"):
        p = sub.add_parser(
            "demo",
            help="a real agent run on a small example project",
            description="Copy an example project with a failing test to a new git repository, "
            'run `nexus run "fix the failing test"` on it, then show the branch, diff and '
            "journal.",
        )
        where = "where to put the project (default: a temp dir)"
        p.add_argument("--dir", dest="target", help=where)
        run_flags(p, "demo")
    p = command("runs", "list runs, newest first")
    p.add_argument("--json", action="store_true")
    p = command("show", "a run's timeline: steps, tools, rationale, results")
    p.add_argument("run")
    p.add_argument("--json", action="store_true")
    for name, help in (
        ("diff", "the run's net diff"),
        ("accept", "apply a run's change to your working tree"),
        ("discard", "remove a run's worktree and branch"),
    ):
        command(name, help).add_argument("run")
    p = command("log", "search the journal")
    p.add_argument("--run")
    p.add_argument("--level", type=str.upper, choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.add_argument("--category")
    p.add_argument("--grep")
    p.add_argument("--since", help="e.g. 10m, 2h, 1d or an ISO time")
    p.add_argument("--limit", type=int)
    p.add_argument("--json", action="store_true", help="one event per line")
    p.add_argument("--follow", action="store_true", help="keep printing new events")
    p = command("export", "export the journal")
    p.add_argument("--run")
    p.add_argument("--format", required=True, choices=("jsonl", "md", "html"))
    p.add_argument("-o", dest="output", help="file to write (default: stdout)")
    if only in (None, "memory"):
        from nexus_ls.cli_memory import add_memory_parser

        add_memory_parser(command)
    if only in (None, "acp"):
        add_acp_parser(sub)
    if only in (None, "serve"):
        sub.add_parser(
            "serve", help="the language server on stdio", description="the language server on stdio"
        )
    return parser


class _Unasked:
    """The parser of a command other than the one asked for: whatever is added to it is
    dropped, so building `nexus log`'s parser costs `log`'s flags only."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # whatever a run wrote, print it, never crash
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    argv = sys.argv[1:] if argv is None else list(argv)
    asked = next((word for word in argv if not word.startswith("-")), None)
    before = argv[: argv.index(asked)] if asked is not None else argv
    asks_help = any(w == "-h" or (len(w) > 2 and "--help".startswith(w)) for w in before)
    if asked not in COMMANDS or asks_help:
        asked = None  # the top-level help, or an error, lists every command
    args = build_parser(asked).parse_args(argv)
    try:
        if args.command == "serve":
            return serve_main([])
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "acp":
            from nexus_ls.acp import cmd_acp

            return cmd_acp(args)
        ws = open_workspace(args.dir)
        handler = globals()[f"cmd_{args.command}"]
        return int(handler(ws, args))
    except NexusError as exc:
        try:  # what was found before the error comes first
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
        print(f"nexus: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `nexus log | head`: the reader had enough
        _silence_stdout()
        return 0


def _silence_stdout() -> None:
    """Point stdout at /dev/null: what is left in its buffer for a closed pipe would make
    the interpreter's exit print a traceback and exit 120."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def cmd_run(ws: Workspace, args: argparse.Namespace) -> int:
    from nexus_ls.cli_approval import TerminalApprover
    from nexus_ls.run_flags import run_options
    from nexus_ls.run_start import start_run
    from nexus_ls.supervisor import Supervisor

    context = file_context(ws, args.file, args.lines, getattr(args, "dir", "."))

    def progress(event: dict[str, Any]) -> None:
        if event["level"] == "DEBUG":  # housekeeping (history shortened): the journal has it
            return
        if event["category"] in PROGRESS_CATEGORIES or event["level"] in ("WARNING", "ERROR"):
            print(f"nexus: {printable(event['message'])}", file=sys.stderr, flush=True)

    def notice(text: str) -> None:
        print(f"nexus: {text}", file=sys.stderr, flush=True)

    supervisor = Supervisor(ws, on_event=progress, approver=TerminalApprover(yes=args.yes))
    supervisor.prestart()  # the agent's imports overlap with resolving the model
    record = start_run(supervisor, args.task, run_options(args), context=context, on_notice=notice)
    try:
        record = supervisor.wait(record.id)
    except KeyboardInterrupt:
        print("nexus: cancelling…", file=sys.stderr, flush=True)
        supervisor.cancel(record.id)
        record = supervisor.wait(record.id)
    if args.json:
        print(json.dumps(run_summary(record)))
    else:
        print(printable(f"{record.status}: {record.error or record.summary}"))
        print(
            f"branch {record.branch} — review with `nexus diff {record.id}`, "
            f"then `nexus accept {record.id}` or `nexus discard {record.id}`"
        )
    return 0 if record.status == "succeeded" else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from nexus_ls.demo import TASK, prepare

    root = prepare(args.target)
    print(f"nexus: example project with a failing test at {root}", file=sys.stderr)
    ws = open_workspace(root)
    args.task, args.file, args.lines = TASK, None, None
    code = cmd_run(ws, args)
    if args.json:
        return code
    from nexus_ls.journal import timeline
    from nexus_ls.run_recovery import run_store
    from nexus_ls.sandbox import net_diff
    from nexus_ls.supervisor import Supervisor

    record = run_store(ws).list()[0]
    print(f"\n$ git branch --list 'nexus/*'   (in {root})")
    print(git(ws.root, "branch", "--list", "nexus/*"))
    print(f"\n$ nexus diff {record.id}")
    head = Supervisor(ws).head(record)
    diff = net_diff(ws, record.base, head) if record.base else ""
    sys.stdout.write(for_terminal(diff) if diff else no_change(record, head) + "\n")
    print(f"\n$ nexus show {record.id}")
    print(timeline(Journal.for_state_dir(ws.state_dir).query(run=record.id)))
    return code


def run_summary(record: RunRecord) -> dict[str, Any]:
    return {
        "run_id": record.id,
        "status": record.status,
        "branch": record.branch,
        "base": record.base,
        "head": record.head,
        "summary": record.summary or record.error,
        "steps": record.steps,
        "tokens": record.tokens,
    }


def file_context(ws: Workspace, file: str | None, lines: str | None, base: str = ".") -> str:
    """The text of `--file` (or its `--lines A:B`) for the agent; a relative path is taken
    from `-C DIR`, as git does."""
    if lines and not file:
        raise NexusError("--lines needs --file")
    if not file:
        return ""
    path = (Path(file) if Path(file).is_absolute() else Path(base) / file).resolve()
    try:
        rel = path.relative_to(ws.root).as_posix()
        if not path.is_file():  # a FIFO or a device would block the read for ever
            what = "a folder" if path.is_dir() else "not a regular file"
            raise NexusError(f"--file {file} is {what}" if path.exists() else
                             f"cannot read --file {file}: No such file or directory")  # fmt: skip
        text = path.read_text(encoding="utf-8", errors="replace")
    except ValueError:
        raise NexusError(f"--file {file} is outside the workspace {ws.root.name}") from None
    except OSError as exc:
        raise NexusError(f"cannot read --file {file}: {exc.strerror}") from None
    all_lines = text.splitlines()
    first, last = 1, len(all_lines)
    if lines:
        try:
            a, b = (int(x) for x in lines.split(":"))
        except ValueError:
            raise NexusError(f"--lines {lines!r} should look like 10:20") from None
        if not 1 <= a <= b:
            raise NexusError(f"--lines {lines!r}: need 1 <= A <= B")
        first, last = a, min(b, len(all_lines))
    body = "\n".join(all_lines[first - 1 : last])
    return f"{rel}, lines {first}-{last}:\n```\n{body}\n```"


def for_terminal(diff: str) -> str:
    """A diff as it is for a pipe (`nexus diff RUN | git apply`), with the escape sequences
    a run could hide lines behind made visible when it goes to a terminal."""
    return printable(diff) if sys.stdout.isatty() else diff


def cmd_runs(ws: Workspace, args: argparse.Namespace) -> int:
    from nexus_ls.run_recovery import list_runs
    from nexus_ls.runs import RunRecord

    listed = list_runs(ws)
    if args.json:
        print(json.dumps([r.to_json() for r in listed], indent=1))
        return 0
    if not listed:
        print('no runs yet; start one with: nexus run "TASK"')
    for r in in_tree_order(listed):
        if not isinstance(r, RunRecord):  # damaged or orphaned: say what is wrong
            print(printable(f"{r.id}  {r.status:<22}           {r.error}"))
            continue
        task = r.task if len(r.task) <= 50 else r.task[:49] + "…"
        review = f" ({r.review})" if r.review else ""
        indent = "  " * (r.depth - 1) + "└ " if r.depth else ""
        print(printable(f"{indent}{r.id}  {r.status + review:<22} {r.steps:>3} steps  {task}"))
    return 0


def in_tree_order(listed: Sequence[RunRecord | Damaged | Orphan]) -> list[Any]:
    """Newest first, each run's sub-agents under it in the order they were spawned."""
    from nexus_ls.runs import RunRecord

    children: dict[str, list[RunRecord]] = {}
    for r in listed:
        if isinstance(r, RunRecord) and r.parent:
            children.setdefault(r.parent, []).append(r)
    ordered: list[Any] = []

    def add(r: RunRecord | Damaged | Orphan) -> None:
        ordered.append(r)
        for child in sorted(children.get(r.id, []), key=lambda c: c.id):
            add(child)

    known = {r.id for r in listed}
    for r in listed:
        if not (isinstance(r, RunRecord) and r.parent and r.parent in known):
            add(r)
    return ordered


def cmd_show(ws: Workspace, args: argparse.Namespace) -> int:
    from nexus_ls.journal import timeline
    from nexus_ls.run_recovery import run_store

    record = run_store(ws).find(args.run)
    events = Journal.for_state_dir(ws.state_dir).query(run=record.id)
    if args.json:
        print(json.dumps({"run": record.to_json(), "events": events}, indent=1))
        return 0
    print(f"status {record.status}{f' ({record.review})' if record.review else ''}")
    if record.parent:
        print(f"sub-agent of {record.parent}")
    print(timeline(events))
    store = run_store(ws)
    kids = [store.load(i) for i in sorted(store.ids()) if i.startswith(f"{record.id}-")]
    if kids:
        print("sub-agents:")
    for kid in kids:
        said = (kid.error or kid.summary or kid.task).strip().splitlines() or [""]
        indent = "  " * (kid.depth - record.depth)
        print(printable(f"{indent}{kid.id}  {kid.status}  {kid.branch}  {said[0][:120]}"))
    return 0


def cmd_diff(ws: Workspace, args: argparse.Namespace) -> int:
    from nexus_ls.sandbox import net_diff
    from nexus_ls.supervisor import Supervisor

    supervisor = Supervisor(ws)
    record = supervisor.store.find(args.run)
    if not record.base:
        raise NexusError(
            f"run {record.id} stopped before its snapshot was made; there is no diff, and "
            f"`nexus discard {record.id}` removes it"
        )
    head = supervisor.head(record)
    diff = net_diff(ws, record.base, head)
    sys.stdout.write(for_terminal(diff) if diff else no_change(record, head) + "\n")
    return 0


def no_change(record: RunRecord, head: str) -> str:
    """What `nexus diff` says for a run whose net diff is empty, instead of nothing."""
    gone = record.review == "discarded"
    where = f"branch {record.branch}" + (", now discarded," if gone else "")
    base = record.base[:12]
    if head == record.base:
        at = f"{where} {'was' if gone else 'is'} at its base {base}"
    else:  # it committed, and its commits cancel out
        at = f"the commits on {where} end at {head[:12]}, the same files as its base {base}"
    if not record.finished:
        return f"run {record.id} has changed nothing yet (it is {record.status}; {at})"
    return f"run {record.id} changed nothing ({at})"


def cmd_accept(ws: Workspace, args: argparse.Namespace) -> int:
    from nexus_ls.supervisor import Supervisor

    record, paths = Supervisor(ws).accept(args.run)
    files = f"{len(paths)} file{'' if len(paths) == 1 else 's'}"
    print(f"accepted {record.id}: {files} changed in your working tree")
    for path in paths:
        print(f"  {printable(path)}")
    return 0


def cmd_discard(ws: Workspace, args: argparse.Namespace) -> int:
    from nexus_ls.runs import RunRecord
    from nexus_ls.supervisor import Supervisor

    entry = Supervisor(ws).discard(args.run)
    if isinstance(entry, RunRecord):
        print(f"discarded {entry.id}: worktree and branch {entry.branch} removed")
    else:
        print(f"discarded {entry.status} run {entry.id}: its branch, worktree and record removed")
    return 0


def journaled_run(ws: Workspace, prefix: str) -> str:
    """The run whose events to read: a record's id (damaged records too), or the id of a
    run whose record is gone but whose events the journal holds."""
    from nexus_ls.runs import NoSuchRun, RunStore

    try:
        return RunStore(ws.state_dir).match(prefix)  # its ids only: nothing to recover
    except NoSuchRun:
        if Journal.for_state_dir(ws.state_dir).query(run=prefix, limit=1):
            return prefix
        raise


def log_filters(ws: Workspace, args: argparse.Namespace) -> dict[str, Any]:
    run = journaled_run(ws, args.run) if args.run else None
    if args.category and args.category not in CATEGORIES:
        raise NexusError(f"--category {args.category!r} is not one of {', '.join(CATEGORIES)}")
    if args.limit is not None and args.limit < 0:
        raise NexusError("--limit must be 0 or more")
    try:
        since = parse_since(args.since) if args.since is not None else None
    except ValueError as exc:
        raise NexusError(str(exc)) from None
    return {
        "run": run,
        "level": args.level,
        "category": args.category,
        "grep": args.grep,
        "since": since,
    }


def cmd_log(ws: Workspace, args: argparse.Namespace) -> int:
    journal = Journal.for_state_dir(ws.state_dir)
    filters = log_filters(ws, args)

    encode = json.JSONEncoder(ensure_ascii=False).encode

    def line(event: dict[str, Any]) -> str:
        return json_safe(encode(event)) + "\n" if args.json else format_line(event) + "\n"

    if args.follow:
        try:
            for event in journal.follow(**filters):
                sys.stdout.write(line(event))
                sys.stdout.flush()  # each as it comes
        except KeyboardInterrupt:
            return 0
        return 0
    for event in journal.events(**filters, limit=args.limit):
        sys.stdout.write(line(event))
    sys.stdout.flush()  # a closed pipe is said here, while main still listens for it
    if journal.skipped:
        count = journal.skipped
        what = "lines that are not" if count > 1 else "line that is not a"
        what += " well-formed event" + ("s" if count > 1 else "")
        print(f"nexus: skipped {count} journal {what}", file=sys.stderr)
    return 0


def cmd_export(ws: Workspace, args: argparse.Namespace) -> int:
    from nexus_ls.journal import export

    run = journaled_run(ws, args.run) if args.run else None
    text = export(Journal.for_state_dir(ws.state_dir).query(run=run), args.format)
    if args.format == "jsonl":
        text = json_safe(text)
    elif args.format == "md":
        text = printable(text)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise NexusError(f"cannot write {args.output}: {exc.strerror}") from None
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_memory(ws: Workspace, args: argparse.Namespace) -> int:
    from nexus_ls.cli_memory import cmd_memory as memory

    return memory(ws, args)


def serve_main(argv: Sequence[str] | None = None) -> int:
    """`nexus-ls`: the language server on stdio."""
    from nexus_ls.server import main as server_main

    return server_main()


if __name__ == "__main__":
    sys.exit(main())
