"""Starts, watches and stops agent processes; the only writer of their journal events.

Each run: start `python -m nexus_ls.agent` in its own process group (or take the spare
one, `agent_launch`), snapshot the user's state and make the run's worktree and branch
while it imports, send it its `start`, journal every event it streams, and record how
the run ended (`run_status`), whatever the agent managed to say. Review (accept,
discard) is `run_review`'s; the methods here hand it on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nexus_ls.agent import protocol
from nexus_ls.agent_launch import AgentLauncher, stop
from nexus_ls.config import ModelSettings, RunSettings
from nexus_ls.errors import NexusError
from nexus_ls.inputs import check_text
from nexus_ls.journal import Journal, now_iso
from nexus_ls.memory import WorkspaceMemory, serve_memory
from nexus_ls.models.embedded import ensure_server
from nexus_ls.run_recovery import Damaged, Orphan, run_store
from nexus_ls.run_review import RunReview
from nexus_ls.run_sandbox import host_secrets, make_sandbox, tear_down
from nexus_ls.run_status import StopAs, final_status, reported_counts
from nexus_ls.run_tree import SubAgents, SubStart
from nexus_ls.runs import RunRecord, new_run_id, process_started
from nexus_ls.sandbox import Workspace, branch_name, discard, git
from nexus_ls.sandbox.confinement import choose_mode
from nexus_ls.sandbox.processes import keep_private
from nexus_ls.sandbox.worktree import worktree_path

EventHook = Callable[[dict[str, Any]], None]
# Serves one request kind: (the asking run, the request's body) -> the reply's body.
# A `NexusError` it raises is the reply's error, said to the model.
Serve = Callable[["RunHandle", dict[str, Any]], dict[str, Any]]
# (run, request) -> ("once" | "run" | "deny", who decided, in words)
Approver = Callable[[RunRecord, dict[str, Any]], tuple[str, str]]
CANCEL_GRACE = 5.0
# The agent enforces its wall time itself; past it by this much, the host stops it.
OVERTIME = 2.0


@dataclass
class RunHandle:
    record: RunRecord
    process: subprocess.Popen[bytes]
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, Any] | None = None
    stop_as: StopAs | None = None  # how the run ends if the host stopped it
    stop_error: str | None = None  # why, when the host stopped it for a limit
    pids_cgroup: str | None = None  # where the agent made per-command cgroups
    stdin_lock: threading.Lock = field(default_factory=threading.Lock)
    timers: list[threading.Timer] = field(default_factory=list)
    settings: RunSettings | None = None  # what it was started with: its sub-agents inherit it


class Supervisor:
    def __init__(
        self,
        ws: Workspace,
        on_event: EventHook | None = None,
        on_finish: Callable[[RunRecord], None] | None = None,
        approver: Approver | None = None,
        *,
        spare: bool = False,
    ) -> None:
        """`spare`: keep an agent process started in advance for the next run (for a host
        that lives on, like the language server; `stop_all` kills it)."""
        keep_private()  # this process holds the API key; commands must not read it
        self.ws = ws
        self.approver = approver
        self.on_finish = on_finish
        self.journal = Journal.for_state_dir(ws.state_dir)
        self.store = run_store(ws)
        self.memory = WorkspaceMemory(ws.state_dir, self.journal, on_event)
        self.review = RunReview(ws, self.store, self.journal, self.emit, self.memory)
        self.on_event = on_event
        self.handles: dict[str, RunHandle] = {}
        self._lock = threading.Lock()
        self.launcher = AgentLauncher(ws.state_dir / "logs", keep_spare=spare)
        self.launcher.refill()
        # The request kinds agents may send; each feature adds its own (`serve`).
        self.serving: dict[str, Serve] = {"approval": self._serve_approval}
        serve_memory(self, self.memory)  # remember, recall
        self.subagents = SubAgents(self)

    def serve(self, kind: str, handler: Serve) -> None:
        """Answer the agents' `kind` requests with `handler` (run in its own thread)."""
        self.serving[kind] = handler

    def tell(self, run_id: str, kind: str, text: str, **data: Any) -> bool:
        """Push a note to a running agent; the model reads it at its next turn. False if
        the run is not running."""
        handle = self.handles.get(run_id)
        if handle is None or handle.done.is_set():
            return False
        note = {"type": protocol.NOTE, "kind": kind, "text": text, **data}
        return self._send(handle, note)

    def start(
        self,
        task: str,
        settings: RunSettings,
        context: str = "",
        notes: Sequence[str] = (),
        *,
        sub: SubStart | None = None,
    ) -> RunRecord:
        """Make the run's sandbox and start its agent; `notes` say how the model was chosen;
        `sub`: a sub-agent's run, started from its parent's tip (`run_tree`)."""
        if not task.strip():
            raise NexusError("the task is empty; say what the agent should do")
        check_text(task, "task")
        check_text(context, "context (the selection or file sent with the task)")
        for note in notes:
            check_text(note, "note")
        choose_mode(settings.sandbox)  # refuse before any git state is made
        run_id = sub.run_id if sub else new_run_id()
        record = RunRecord(
            id=run_id,
            task=task,
            created=now_iso(),
            host_pid=os.getpid(),
            host_started=process_started(os.getpid()),
            model=settings.model.model,
            branch=branch_name(run_id),
            worktree=str(worktree_path(self.ws, run_id)),
            parent=sub.parent.id if sub else None,
            depth=sub.parent.depth + 1 if sub else 0,
        )
        self.store.save(record)  # `queued`, before any git state: a kill leaves a record
        try:
            # Started first, so that its imports overlap the snapshot and the worktree.
            process = self.launcher.launch(run_id)
        except BaseException:
            self.store.remove(run_id)
            raise
        try:
            return self._start(record, process, settings, context, notes, sub)
        except BaseException:
            stop(process)  # it never got its start message: a failed start leaves no agent
            raise
        finally:
            self.launcher.refill()  # the next run's agent, once this one has its start

    def prestart(self) -> None:
        """Start the next run's agent now, for a host that has other work before it calls
        `start` (resolving the model, say); a supervisor without a spare keeps no other."""
        self.launcher.refill(once=True)

    def _start(
        self,
        record: RunRecord,
        process: subprocess.Popen[bytes],
        settings: RunSettings,
        context: str,
        notes: Sequence[str],
        sub: SubStart | None,
    ) -> RunRecord:
        run_id, task = record.id, record.task

        def on_base(base: str) -> None:
            record.base = record.head = base
            self.store.save(record)

        try:
            start_at = sub.start_at if sub else None
            box = make_sandbox(self.ws, run_id, settings.sandbox, on_base, start_at)
        except BaseException:
            # Nothing ran: take back what was made, so a failed start leaves nothing behind.
            with contextlib.suppress(NexusError, OSError):
                discard(self.ws, run_id)
            self.store.remove(run_id)
            with contextlib.suppress(OSError):
                (self.ws.state_dir / "logs" / f"{run_id}.stderr").unlink(missing_ok=True)
            raise
        record.sandbox = box.profile.mode
        record.status = "running"
        self.store.save(record)
        self.emit(
            record,
            "INFO",
            "run",
            f"run started: {task}",
            {
                "task": task,
                "branch": record.branch,
                "base": record.base,
                "model": settings.model.public(),
                "limits": asdict(settings.limits),
                "context": context,
                "parent": record.parent,
            },
        )
        for level, category, message, data in box.lines:
            self.emit(record, level, category, message, data)
        for note in notes:
            self.emit(record, "INFO", "model", note)
        if settings.model.gguf:
            settings.model.base_url = self.local_server(record, settings.model)
        handle = RunHandle(record, process, pids_cgroup=box.profile.pids_cgroup, settings=settings)
        with self._lock:
            self.handles[run_id] = handle
        self.subagents.begin(record, settings.limits)
        start = {
            "type": protocol.START,
            "run_id": run_id,
            "task": task,
            "context": context,
            "worktree": record.worktree,
            "git_dir": box.git_dir,
            "base": record.base,
            "model": asdict(settings.model),
            "limits": asdict(settings.limits),
            "sandbox": box.profile.to_json(),
            "secrets": host_secrets(settings.model),
            "commit_size_limit": settings.sandbox.commit_size_limit,
            "policy": box.policy.to_json(),
            "deploy": box.deploy,
            "memory": self.memory.offer(run_id, task, settings),  # lessons for its context
        }
        self._send(handle, start)
        self._watch_wall_time(handle, settings.limits.wall_time)
        threading.Thread(
            target=self._pump, args=(handle,), daemon=True, name=f"nexus-run-{run_id}"
        ).start()
        return record

    def _watch_wall_time(self, handle: RunHandle, wall_time: float) -> None:
        """The limit holds from outside: an agent stopped, blocked or wedged past its wall
        time is told to stop, then killed, and the run ends `failed` saying so."""

        def overtime() -> None:
            if handle.done.is_set():
                return
            handle.stop_error = (
                f"time limit reached ({wall_time:g} s); the agent did not stop by itself "
                "and was stopped by NEXUS"
            )
            self.cancel(handle.record.id, status="failed")

        timer = threading.Timer(wall_time + OVERTIME, overtime)
        timer.daemon = True
        handle.timers.append(timer)
        timer.start()

    def local_server(self, record: RunRecord, model: ModelSettings) -> str:
        """This host's llama.cpp server for the run's GGUF; a failure ends the run, said why."""
        assert model.gguf is not None
        try:
            url = ensure_server(Path(model.gguf), model.model or "local")
        except NexusError as exc:
            self.abort(record, str(exc))
            raise
        name = Path(model.gguf).name
        self.emit(record, "INFO", "model", f"local model server for {name} at {url}")
        return url

    def abort(self, record: RunRecord, error: str) -> None:
        """End a run that could not start, keeping its sandbox for inspection."""
        record.status, record.error, record.ended = "failed", error, now_iso()
        self.store.save(record)
        self.emit(record, "ERROR", "error", f"run failed: {error}", {"error": error})

    def emit(
        self,
        record: RunRecord,
        level: str,
        category: str,
        message: str,
        data: dict[str, Any] | None = None,
        step: int | None = None,
    ) -> dict[str, Any]:
        event = self.journal.log(
            level, category, message, run=record.id, agent=record.id, step=step, data=data or {}
        )
        if self.on_event:
            self.on_event(event)
        return event

    def _pump(self, handle: RunHandle) -> None:
        assert handle.process.stdout is not None
        try:
            for line in handle.process.stdout:
                self._take(handle, line)
        except Exception as exc:  # the host's own failure must not leave the run running
            handle.stop_as = handle.stop_as or "failed"
            handle.stop_error = handle.stop_error or (
                f"NEXUS stopped reading the agent ({type(exc).__name__}: {exc})"
            )
            self._kill(handle, always=True)  # not reaped yet: the group id is still its own
        # Until reaped, the exited agent holds its pid, so its process group id cannot have
        # been reused: kill whatever of the group is left, then reap.
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitid(os.P_PID, handle.process.pid, os.WEXITED | os.WNOWAIT)
        self._kill(handle, always=True)
        code = handle.process.wait()
        try:
            self._finish(handle, code)
        finally:
            handle.done.set()  # even if recording the end failed: no one waits forever
            self.subagents.ended(handle.record)  # nor its parent, nor its children run on

    def _take(self, handle: RunHandle, line: bytes) -> None:
        """One line from the agent: an event to journal, a request to serve, its result."""
        message = protocol.decode(line)
        if message is None:
            return
        if message["type"] == protocol.EVENT:
            self._journal_agent_event(handle.record, message)
        elif message["type"] == protocol.REQUEST:
            threading.Thread(
                target=self._serve, args=(handle, message), daemon=True, name="nexus-request"
            ).start()
        elif message["type"] == protocol.RESULT:
            handle.result = message
            with contextlib.suppress(OSError):
                handle.process.stdin.close()  # type: ignore[union-attr]  # nothing more to say

    def _send(self, handle: RunHandle, message: dict[str, Any]) -> bool:
        """Write one message to the agent; False if it is gone."""
        try:
            with handle.stdin_lock:
                assert handle.process.stdin is not None
                handle.process.stdin.write(protocol.encode(message))
                handle.process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return False
        return True

    def _serve(self, handle: RunHandle, message: dict[str, Any]) -> None:
        """Reply to one request of the agent's; a kind the host does not serve, or a body
        that is not an object, gets an `error` reply."""
        kind, body = message.get("kind"), message.get("body")
        reply: dict[str, Any] = {"type": protocol.REPLY, "id": message.get("id")}
        handler = self.serving.get(kind) if isinstance(kind, str) else None
        if handler is None or not isinstance(body, dict):
            reply["error"] = f"the host does not serve {str(kind)[:60]!r} requests with this body"
        else:
            try:
                reply["body"] = handler(handle, body)
            except NexusError as exc:
                reply["error"] = str(exc)
            except Exception as exc:  # a host bug is the model's error reply, never a hang
                reply["error"] = f"NEXUS failed to serve {kind!r}: {type(exc).__name__}: {exc}"
                self.emit(handle.record, "ERROR", "error", reply["error"])
        self._send(handle, reply)

    def _serve_approval(self, handle: RunHandle, body: dict[str, Any]) -> dict[str, Any]:
        decision, by = self._approve(handle, body)
        return {"decision": decision, "by": by}

    def _approve(self, handle: RunHandle, request: dict[str, Any]) -> tuple[str, str]:
        """Ask whoever can answer (the editor, the terminal) whether a command may run;
        both the question and the answer are journaled."""
        record = handle.record
        command = str(request.get("command", ""))
        what = f"`{command}`" + (" with network" if request.get("network") else "")
        self.emit(
            record, "INFO", "command", f"asking to run {what}: {request.get('reason', '')}",
            {"command": command, "network": bool(request.get("network")), "request": request},
        )  # fmt: skip
        try:
            decision, by = (self.approver or no_one_to_ask)(record, request)
        except Exception as exc:  # an approver's failure is a refusal, never a hung agent
            decision, by = "deny", f"asking failed ({type(exc).__name__}: {exc})"
        if decision not in ("once", "run", "deny"):
            decision, by = "deny", f"an answer NEXUS does not know ({decision!r})"
        verdict = {"once": "allowed once", "run": "allowed for this run", "deny": "refused"}
        self.emit(
            record, "INFO" if decision != "deny" else "WARNING", "command",
            f"{verdict[decision]} ({by}): {what}",
            {"command": command, "decision": decision, "by": by, "request": request},
        )  # fmt: skip
        return decision, by

    def _journal_agent_event(self, record: RunRecord, message: dict[str, Any]) -> None:
        """Journal what the agent reported; a malformed event is kept as an error, not lost."""
        event = {k: message.get(k) for k in ("ts", "level", "category", "message", "step", "data")}
        data = event.get("data")
        if event.get("category") == "agent" and isinstance(data, dict) and data.get("model"):
            record.model = str(data["model"])  # the name the endpoint resolved
        try:
            stored = self.journal.append({**event, "run": record.id, "agent": record.id})
        except (ValueError, TypeError) as exc:
            stored = self.journal.log(
                "ERROR",
                "error",
                f"malformed agent event: {exc}",
                run=record.id,
                agent=record.id,
                data={"event": repr(event)},
            )
        self.subagents.counted(record, stored)
        if self.on_event:
            self.on_event(stored)

    def _finish(self, handle: RunHandle, code: int) -> None:
        record, result = handle.record, handle.result
        for timer in handle.timers:
            timer.cancel()
        tear_down(self.ws.state_dir, record.id, handle.pids_cgroup, handle.process.pid)
        tail = self._stderr_tail(record) if result is None else ""
        record.status, record.error = final_status(
            handle.stop_as, handle.stop_error, result, code, tail
        )
        if result is not None:
            record.summary, record.steps, record.tokens = reported_counts(result, record.tokens)
        with contextlib.suppress(NexusError):
            record.head = git(Path(self.ws.root), "rev-parse", record.branch)
        record.ended = now_iso()
        self.store.save(record)
        self.memory.learn_from_run(record.id)  # before its end is told: a waiting CLI exits
        ok = record.status == "succeeded"
        message = f"run {record.status}: {record.error or record.summary or record.task}"
        self.emit(
            record,
            "INFO" if ok else "ERROR" if record.status == "failed" else "WARNING",
            "run" if ok or record.error is None else "error",
            message,
            {
                "status": record.status,
                "summary": record.summary,
                "error": record.error,
                "steps": record.steps,
                "tokens": record.tokens,
                "head": record.head,
                "exit_code": code,
            },
        )
        self.journal.catch_up()  # a run's ~100 events indexed now, not by the next search
        handle.done.set()
        self.subagents.ended(record)
        if self.on_finish:
            self.on_finish(record)

    def _stderr_tail(self, record: RunRecord) -> str:
        path = self.ws.state_dir / "logs" / f"{record.id}.stderr"
        try:
            lines = path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no output"
        return " | ".join(lines[-3:])[-500:] or "no output"

    def cancel(
        self, run_id: str, *, status: StopAs = "cancelled", because: str | None = None
    ) -> bool:
        """Ask the agent to stop, and its sub-agents; kill its process group if it has not
        stopped after a grace period. `because`: why, when not the user's wish."""
        handle = self.handles.get(run_id)
        if handle is None or handle.done.is_set():
            return False
        handle.stop_as = handle.stop_as or status
        if because and handle.stop_error is None:
            handle.stop_error = because
        self.subagents.cancel_children(run_id, f"its parent run {run_id} was stopped")
        self._send(handle, {"type": protocol.CANCEL})
        timer = threading.Timer(CANCEL_GRACE, self._kill, args=(handle,))
        timer.daemon = True
        handle.timers.append(timer)
        timer.start()
        return True

    def stop_for_limit(self, run_id: str, why: str) -> None:
        """End a run `failed` for a limit the host keeps (a run tree's shared budget)."""
        self.cancel(run_id, status="failed", because=why)

    def _kill(self, handle: RunHandle, always: bool = False) -> None:
        """SIGKILL the agent's process group (works on a stopped agent too)."""
        if always or handle.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(handle.process.pid, signal.SIGKILL)

    def wait(self, run_id: str, timeout: float | None = None) -> RunRecord:
        handle = self.handles[run_id]
        handle.done.wait(timeout)
        return handle.record

    def active(self) -> list[str]:
        return [run_id for run_id, h in self.handles.items() if not h.done.is_set()]

    def stop_all(self, timeout: float = CANCEL_GRACE + 2) -> None:
        """On host shutdown: kill the spare agent, stop every running agent and mark its
        run `interrupted`."""
        self.launcher.close()
        running = self.active()
        for run_id in running:
            self.cancel(run_id, status="interrupted")
        for run_id in running:
            self.handles[run_id].done.wait(timeout)

    # Review is run_review's; these keep the front ends' calls as they were.
    def head(self, record: RunRecord) -> str:
        """The branch's tip while it exists (a run may have moved on), else the recorded head."""
        return self.review.head(record)

    def reviewable(self, run: str) -> RunRecord:
        return self.review.reviewable(run)

    def accept(self, run: str) -> tuple[RunRecord, list[str]]:
        return self.review.accept(run)

    def discard(self, run: str) -> RunRecord | Damaged | Orphan:
        return self.review.discard(run)


def no_one_to_ask(record: RunRecord, request: dict[str, Any]) -> tuple[str, str]:
    return "deny", "no one could be asked (a run without an editor or terminal to ask)"
