"""Services: long-running processes of a run (a web server, a database), started inside
its sandbox, checked for readiness, and ended with the run.

`start_service` passes the same gate as `run_command` (a rule that denies a command denies
it as a service), then starts the command confined like any other, in the run's network
namespace (`sandbox/netns.py`): a later `run_command` reaches it on 127.0.0.1, nothing
outside the run can. It returns once the service is ready (an HTTP URL on loopback that
answers, polled from inside that namespace; or a regex found in its log), or with the
head of its log and its exit status if it died first. Its log is kept whole in the run's
private state (never the worktree, hidden from commands) and read with `service_logs`.
Every service is stopped when the run ends (`end_services`); under bubblewrap it would
die with the agent anyway (`--die-with-parent`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import regex
from pydantic import Field

from nexus_ls.sandbox import processes
from nexus_ls.sandbox.profile import SandboxProfile
from nexus_ls.tools.base import Args, Tool, ToolContext, ToolError, ToolResult, failure
from nexus_ls.tools.kept import KEEP_ONE
from nexus_ls.tools.output import cap, numbered
from nexus_ls.tools.shell import CommandOutcome, gate, sandbox_notes, spawn, unconfined_env

MAX_SERVICES = 4  # running at once in one run
READY_TIMEOUT = 60.0  # default seconds to wait for a service to be ready
MAX_READY_TIMEOUT = 600.0
HEAD_LINES = 40  # of a log shown when a service dies or is not ready
_POLL = 0.05
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_REGEX_WINDOW = 1 << 20  # the log's last bytes a ready regex is searched in
# Polls `url` from inside the run's sandbox until it answers (any status below 500; a
# redirect is an answer, not followed), printing the status; exit 1 at the deadline.
_PROBE = """
import sys, time, urllib.error, urllib.request
class Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
url, end = sys.argv[1], time.monotonic() + float(sys.argv[2])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), Stay())
while time.monotonic() < end:
    try:
        with opener.open(url, timeout=2) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except Exception:
        status = None
    if status is not None and status < 500:
        print(status, flush=True)
        sys.exit(0)
    time.sleep(0.05)
sys.exit(1)
"""


@dataclass
class Service:
    name: str
    command: str
    ready: str
    proc: subprocess.Popen[bytes]
    log: Path
    sandbox: SandboxProfile | None  # None: unconfined (a user's rule let it out)
    started: float = field(default_factory=time.monotonic)
    stopped: bool = False

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def status(self) -> str:
        if self.running:
            return f"running (pid {self.proc.pid}, {time.monotonic() - self.started:.0f} s)"
        how = "stopped" if self.stopped else "exited"
        return f"{how} (exit code {self.proc.returncode})"


class Services:
    """One run's services by name, their logs in `folder`."""

    def __init__(self, folder: Path, owned: bool = False) -> None:
        self.folder, self.owned = folder, owned
        self.table: dict[str, Service] = {}
        self._lock = threading.Lock()

    def running(self) -> list[Service]:
        return [s for s in self.table.values() if s.running]

    def get(self, name: str) -> Service:
        service = self.table.get(name)
        if service is None:
            known = ", ".join(self.table) or "none yet"
            raise ToolError(f"there is no service named {name!r} in this run (services: {known})")
        return service

    def stop(self, service: Service) -> None:
        """Kill the service and everything it started, and reap it."""
        if service.running:
            service.stopped = True
            # Without a pid namespace (Landlock, the sandbox off) a child may have left the
            # service's process group: its tree goes first, then the group.
            processes.kill_descendants(service.proc.pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(service.proc.pid, signal.SIGKILL)
        service.proc.wait()
        processes.unspare(service.proc.pid)

    def stop_all(self) -> None:
        for service in list(self.table.values()):
            self.stop(service)
        if self.owned:
            shutil.rmtree(self.folder, ignore_errors=True)


def services(ctx: ToolContext) -> Services:
    """The run's services, their logs beside its private home and /tmp (hidden from every
    command, removed with the run's private state); a folder of their own without one."""
    if ctx.services is None:
        if ctx.sandbox is not None:
            folder = Path(ctx.sandbox.private_home).parent / "services"
            folder.mkdir(parents=True, exist_ok=True)
            ctx.services = Services(folder)
        else:
            ctx.services = Services(Path(tempfile.mkdtemp(prefix="nexus-services-")), owned=True)
    return ctx.services


def end_services(ctx: ToolContext) -> None:
    """At the end of a run: every service stopped, the run's network namespace let go."""
    if ctx.services is not None:
        ctx.services.stop_all()
    if ctx.run_network is not None:
        ctx.run_network.close()


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ToolError(
            f"service name {name[:60]!r} is not valid: 1-40 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit (e.g. 'web')"
        )
    return name


def check_ready(ready: str) -> tuple[str, str]:
    """("url", url) for an HTTP URL on loopback, ("log", pattern) for a regex; a URL
    elsewhere is refused: a service is reached only from inside the run."""
    ready = ready.strip()
    if not ready:
        raise ToolError(
            "ready is empty: give http://127.0.0.1:PORT/ to poll, or a regex to find in its log"
        )
    if _SCHEME.match(ready):
        parts = urlsplit(ready)
        try:
            parts.port  # noqa: B018 - a bad port raises
        except ValueError:
            raise ToolError(f"ready URL {ready[:100]!r} has a bad port") from None
        host = (parts.hostname or "").lower()
        if parts.scheme.lower() != "http" or host not in LOOPBACK_HOSTS or "@" in parts.netloc:
            raise ToolError(
                f"ready URL {ready[:100]!r} is not plain http on loopback: a service is "
                "reached only from inside the run; give http://127.0.0.1:PORT/PATH (or "
                "localhost, [::1]), or a regex to find in its log"
            )
        return "url", ready
    try:
        regex.compile(ready, regex.MULTILINE)
    except regex.error as exc:
        raise ToolError(f"ready is neither a loopback URL nor a valid regex: {exc}") from None
    return "log", ready


def start_service(
    ctx: ToolContext, name: str, command: str, ready: str, timeout: float | None = None
) -> ToolResult:
    """Start `command` as the service `name`; return when `ready` says it is, or it died."""
    check_name(name)
    if not command.strip():
        raise ToolError("command is empty; give the shell command that runs the service")
    kind, target = check_ready(ready)
    seconds = _ready_timeout(ctx, timeout)
    if ctx.cancel is not None and ctx.cancel.is_set():
        return failure("cancelled before the service started", category="command")
    table = services(ctx)
    with table._lock:
        old = table.table.get(name)
        if old is not None and old.running:
            raise ToolError(f"service {name!r} is already running; stop_service it first")
        if len(table.running()) >= MAX_SERVICES:
            names = ", ".join(s.name for s in table.running())
            raise ToolError(f"a run may have {MAX_SERVICES} services running at once ({names}); "
                            "stop one first")  # fmt: skip
        verdict = gate(ctx, command, False, "command")
        if isinstance(verdict, ToolResult):
            return verdict
        sandbox = None if verdict.unconfined else ctx.sandbox  # the user's rule says so
        # Its output reaches the log as it is printed: a ready regex would wait on
        # Python's buffer otherwise.
        extra = {**(unconfined_env(ctx) if verdict.unconfined else {}), "PYTHONUNBUFFERED": "1"}
        log = table.folder / f"{name}.log"
        with open(log, "wb") as out:  # a service started again starts a new log
            # The service has the run's network (`verdict.network` is for one command:
            # a service somewhere else could not be reached by the run's commands).
            proc = spawn(command, ctx.root, out, sandbox, False, extra, ctx.run_network)
        processes.spare(proc.pid)
        service = Service(name, command, ready, proc, log, sandbox)
        table.table[name] = service
    state, detail = _wait_ready(ctx, service, kind, target, seconds)
    waited = time.monotonic() - service.started
    data: dict[str, Any] = {
        "service": name, "command": command, "ready": ready, "pid": proc.pid,
        "state": state, "waited_ms": int(waited * 1000), **verdict.data,
        "sandboxed": sandbox is not None and sandbox.mode != "off",
    }  # fmt: skip
    if state == "ready":
        text = (
            f"service {name} is ready after {waited:.1f} s ({detail}); pid {proc.pid}. It runs "
            f'until stop_service{{"name": "{name}"}} or the end of the run; read its log '
            f'with service_logs{{"name": "{name}"}}.{_where_reachable(ctx, sandbox)}'
        )
        tail = _tail(log, 10)
        tail = ctx.scrub(tail) if ctx.scrub else tail
        return ToolResult(True, text + (f"\nlast lines of its log:\n{tail}" if tail else ""),
                          data, category="command")  # fmt: skip
    if state != "exited":
        table.stop(service)
    data["exit_code"] = proc.returncode
    head = _head(log)
    code = "killed" if proc.returncode is None else f"exit code {proc.returncode}"
    why = {
        "exited": f"service {name} exited ({code}) before it was ready",
        "timeout": f"service {name} was not ready after {seconds:g} s ({detail}); it was "
        "stopped (pass a larger timeout if it needs longer)",
        "cancelled": f"cancelled while waiting for service {name}; it was stopped",
    }[state]
    outcome = CommandOutcome(command, proc.returncode, int(waited * 1000), False, False, head)
    notes = sandbox_notes(outcome, sandbox) + _landlock_note(sandbox, kind)
    shown = ctx.scrub(head) if ctx.scrub else head
    text = f"{why}\nhead of its log:\n{shown or '(empty)'}" + "".join(f"\n{n}" for n in notes)
    return failure(text, category="command", **data)


def _ready_timeout(ctx: ToolContext, timeout: float | None) -> float:
    if timeout is not None and not 0 < timeout <= MAX_READY_TIMEOUT:
        raise ToolError(f"timeout must be between 0 and {MAX_READY_TIMEOUT:g} seconds")
    seconds = READY_TIMEOUT if timeout is None else float(timeout)
    if ctx.time_left is not None:
        seconds = min(seconds, max(ctx.time_left, 0.1))
    return seconds


def _wait_ready(
    ctx: ToolContext, service: Service, kind: str, target: str, seconds: float
) -> tuple[str, str]:
    """("ready" | "exited" | "timeout" | "cancelled", what was seen)."""
    deadline = time.monotonic() + seconds
    probe: subprocess.Popen[bytes] | None = None
    answer = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the `finally` below
    if kind == "url":
        line = shlex.join([sys.executable, "-I", "-S", "-c", _PROBE, target, f"{seconds:.2f}"])
        probe = spawn(line, ctx.root, answer, service.sandbox, False, None, ctx.run_network)
    pattern = regex.compile(target, regex.MULTILINE) if kind == "log" else None
    pause = ctx.cancel or threading.Event()
    try:
        while True:
            if probe is not None and probe.poll() == 0:
                answer.seek(0)
                status = answer.read().decode("utf-8", "replace").strip().splitlines()
                return "ready", f"{target} answered {status[-1] if status else ''}".rstrip()
            if pattern is not None:
                found = _search(pattern, service.log)
                if found is not None:
                    return "ready", f"its log matched: {found[:200]!r}"
            if not service.running:
                return "exited", ""
            if ctx.cancel is not None and ctx.cancel.is_set():
                return "cancelled", ""
            if time.monotonic() >= deadline:
                seen = f"{target} did not answer" if kind == "url" else "its log never matched"
                return "timeout", seen
            pause.wait(_POLL)
    finally:
        if probe is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(probe.pid, signal.SIGKILL)
            probe.wait()
        answer.close()


def _read_end(log: Path, limit: int) -> tuple[str, int] | None:
    """The last `limit` bytes of `log` as text, and the log's size; None if unreadable."""
    try:
        with open(log, "rb") as stream:
            size = stream.seek(0, 2)
            stream.seek(max(size - limit, 0))
            return stream.read().decode("utf-8", "replace"), size
    except OSError:
        return None


def _search(pattern: regex.Pattern[str], log: Path) -> str | None:
    end = _read_end(log, _REGEX_WINDOW)
    if end is None:
        return None
    text = end[0]
    try:
        found = pattern.search(text, timeout=1.0)
    except TimeoutError:
        return None
    return found.group(0) if found else None


def _where_reachable(ctx: ToolContext, sandbox: SandboxProfile | None) -> str:
    if ctx.run_network is not None and ctx.run_network.entry() is not None and sandbox:
        return (" Commands of this run reach it on loopback (not those given network: true, "
                "which run on the host's network); nothing outside the run can.")  # fmt: skip
    return (" It is on this machine's own network (the run's network is on, or its sandbox "
            "has no private one): other programs here can reach it, and others on the "
            "network too if it listens on all addresses; bind it to 127.0.0.1.")  # fmt: skip


def _landlock_note(sandbox: SandboxProfile | None, kind: str) -> list[str]:
    if sandbox is not None and sandbox.mode == "landlock" and not sandbox.network:
        return [
            "note: under Landlock commands may neither listen on nor connect to TCP ports "
            "while the run's network is off: a service on a port needs the run's network "
            "on (--network on)"
        ]
    return []


def _head(log: Path, lines: int = HEAD_LINES) -> str:
    try:
        with open(log, "rb") as stream:
            raw = stream.read(64 << 10)
    except OSError:
        return ""
    text = raw.decode("utf-8", "replace")
    return cap("\n".join(text.splitlines()[:lines]), 6_000)


def _tail(log: Path, lines: int, limit: int = KEEP_ONE) -> str:
    """The last `lines` lines of `log` (0: all of it), reading at most `limit` bytes."""
    end = _read_end(log, limit)
    if end is None:
        return ""
    text, size = end
    kept = text.splitlines()
    if size > limit:
        kept = kept[1:]  # the first line read may be cut
    return "\n".join(kept[-lines:] if lines else kept)


def service_logs(
    ctx: ToolContext, name: str, tail: int | None = None, start_line: int | None = None
) -> ToolResult:
    """The service's log: its last `tail` lines, or numbered lines from `start_line`."""
    service = services(ctx).get(check_name(name))
    status = service.status()
    if start_line is not None:
        if start_line < 1:
            raise ToolError("start_line counts from 1")
        with open(service.log, "rb") as stream:
            lines = stream.read(KEEP_ONE).decode("utf-8", "replace").splitlines()
        if start_line > max(len(lines), 1):
            raise ToolError(f"the log of {name} has {len(lines)} lines")
        body, _ = numbered(lines, start_line, len(lines), ctx.output_limit - 200)
    else:
        count = 100 if tail is None else tail
        if count < 0:
            raise ToolError("tail is a number of lines (0: all of the log)")
        body = _tail(service.log, count)
    body = ctx.scrub(body) if ctx.scrub else body
    size = service.log.stat().st_size if service.log.exists() else 0
    text = f"service {name}: {status}; log {size:,} bytes\n{body or '(empty)'}"
    return ToolResult(True, text, {"service": name, "status": status, "log_bytes": size})


def stop_service(ctx: ToolContext, name: str) -> ToolResult:
    """Stop the service and everything it started; its log stays readable."""
    table = services(ctx)
    service = table.get(check_name(name))
    was = service.running
    table.stop(service)
    what = "stopped" if was else f"was not running ({service.status()})"
    text = f"service {name} {what}; service_logs still shows its log until the run ends"
    return ToolResult(True, text, {"service": name, "exit_code": service.proc.returncode})


class StartServiceArgs(Args):
    name: str = Field(description="A short name for the service, e.g. 'web'.")
    command: str = Field(description="The shell command that runs it (in the project root).")
    ready: str = Field(
        description="When it is ready: an http://127.0.0.1:PORT/PATH URL to poll (any "
        "status below 500 counts), or a regex to wait for in its output."
    )
    timeout: float | None = Field(None, description="Seconds to wait for it to be ready (60).")


class ServiceLogsArgs(Args):
    name: str = Field(description="The service's name.")
    tail: int | None = Field(None, description="The last N lines (100; 0: all of them).")
    start_line: int | None = Field(None, description="Instead: numbered lines from this one.")


class StopServiceArgs(Args):
    name: str = Field(description="The service's name.")


TOOLS = (
    Tool(
        "start_service",
        "Start a long-running process (a web server, a database) inside the run's sandbox "
        "and wait until it is ready; later commands reach it on 127.0.0.1. It runs until "
        "stop_service or the end of the run. If it dies first you get its exit code and "
        "the head of its log.",
        StartServiceArgs,
        start_service,
        category="command",
        changes_files=True,
        subject=lambda args, result: f"start service {args.name}",
    ),
    Tool(
        "service_logs",
        "Read a service's output (stdout and stderr, kept whole).",
        ServiceLogsArgs,
        service_logs,
    ),
    Tool(
        "stop_service",
        "Stop a service and everything it started.",
        StopServiceArgs,
        stop_service,
        changes_files=True,
        subject=lambda args, result: f"stop service {args.name}",
    ),
)
