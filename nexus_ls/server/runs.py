"""nexus.run, nexus.cancel, nexus.runs, and the live view of runs: progress and events."""

from __future__ import annotations

import itertools
from concurrent.futures import Future
from typing import Any

from lsprotocol import types

from nexus_ls.journal.progress import headline, read_plan
from nexus_ls.journal.shapes import PlanStepData
from nexus_ls.run_recovery import Listed, list_runs
from nexus_ls.run_start import RunOptions, prepare_run
from nexus_ls.runs import RunRecord
from nexus_ls.server.app import NexusServer, off_loop, one_object, user_error
from nexus_ls.server.context import selection_context
from nexus_ls.server.settings import ServerSettings

_tokens = itertools.count(1)
STEP_CATEGORIES = frozenset({"tool", "edit", "command", "test", "agent"})


class LiveView:
    """Progress and notifications for the runs this server started."""

    def __init__(self, ls: NexusServer) -> None:
        self.ls = ls
        self.tokens: dict[str, str] = {}  # run id -> progress token
        self.plans: dict[str, list[PlanStepData]] = {}  # run id -> its current plan
        self.told_bundled = False
        self.told_sandbox = False

    def supports_progress(self) -> bool:
        window = self.ls.client_capabilities.window
        return bool(window and window.work_done_progress)

    async def begin(self, task: str) -> str | None:
        """A fresh progress token, created with the client and begun, before the run starts
        (so no step can be reported before its progress exists)."""
        if not self.supports_progress():
            return None
        token = f"nexus-run-{next(_tokens)}-{id(self)}"
        await self.ls.work_done_progress.create_async(token)
        self.ls.work_done_progress.begin(
            token,
            types.WorkDoneProgressBegin(title="NEXUS", message=task, cancellable=True),
        )
        return token

    def attach(self, token: str, record: RunRecord, cancel: Any) -> None:
        self.tokens[record.id] = token
        future: Future[Any] | None = self.ls.work_done_progress.tokens.get(token)
        if future is not None:
            future.add_done_callback(lambda f: f.cancelled() and cancel(record.id))

    def event(self, event: dict[str, Any]) -> None:
        run_id = event.get("run")
        self.ls.protocol.notify("nexus/event", {"runId": run_id, "event": event})
        if event.get("category") == "run" and str(event.get("message", "")).startswith("sandbox"):
            self.sandbox(event)
        token, root = self.token_of(str(run_id))
        # Housekeeping (DEBUG: history shortened) is not progress.
        step = event.get("step") and event.get("level") != "DEBUG"
        if token and event.get("category") in STEP_CATEGORIES and step:
            message = self.step_message(str(run_id), event)
            if root != run_id:  # a sub-agent's step shows in its tree's progress
                message = f"sub-agent {str(run_id)[len(root) + 1 :]}: {message}"
            self.ls.work_done_progress.report(token, types.WorkDoneProgressReport(message=message))

    def token_of(self, run_id: str) -> tuple[str | None, str]:
        """The progress token of a run, or of the run tree it is a sub-agent in (a child's
        id extends its parent's: `<parent>-<n>`), and whose it is."""
        if run_id in self.tokens:
            return self.tokens[run_id], run_id
        for root, token in self.tokens.items():
            if run_id.startswith(f"{root}-"):
                return token, root
        return None, run_id

    def step_message(self, run_id: str, event: dict[str, Any]) -> str:
        """A step event as progress: after the run's current plan once it has one
        (`plan 2/5: fix add() · step 4: edit_file — ...`); a new plan as its headline."""
        message, data = str(event.get("message", "")), event.get("data")
        plan = read_plan(data) if event.get("category") == "agent" else None
        if plan is not None:
            self.plans[run_id] = plan
            return headline(plan)
        known = self.plans.get(run_id)
        if known is None or (isinstance(data, dict) and data.get("tool") == "update_plan"):
            return message  # the plan event that follows says what changed
        return f"{headline(known)} · {message}"

    def sandbox(self, event: dict[str, Any]) -> None:
        """The sandbox in force, at each run's start: a log line every time, a message the
        first time, and a warning every time it is off."""
        text = f"NEXUS run {event.get('run')}: {event.get('message')}"
        self.ls.window_log_message(
            types.LogMessageParams(type=types.MessageType.Info, message=text)
        )
        off = event.get("level") == "WARNING"
        if off or not self.told_sandbox:
            self.told_sandbox = True
            kind = types.MessageType.Warning if off else types.MessageType.Info
            self.ls.window_show_message(types.ShowMessageParams(type=kind, message=text))

    def finish(self, record: RunRecord) -> None:
        outcome = record.error or record.summary or ""
        if record.parent:  # a sub-agent: its parent reports; the editor's log keeps it
            self.ls.window_log_message(types.LogMessageParams(
                type=types.MessageType.Info,
                message=f"NEXUS sub-agent {record.id} {record.status}: {outcome[:300]}",
            ))  # fmt: skip
            return
        token = self.tokens.pop(record.id, None)
        self.plans.pop(record.id, None)
        if token:
            self.ls.work_done_progress.end(
                token, types.WorkDoneProgressEnd(message=f"{record.status}: {outcome}"[:200])
            )
        kind = types.MessageType.Info if record.status == "succeeded" else types.MessageType.Warning
        self.ls.window_show_message(
            types.ShowMessageParams(
                type=kind,
                message=f"NEXUS run {record.id} {record.status}: {outcome[:300]} — review it "
                f"with nexus.show or nexus.diff, then nexus.accept or nexus.discard",
            )
        )


def run_options(s: ServerSettings) -> RunOptions:
    """What the editor's settings set for a run, in the place of `nexus run`'s flags."""
    return RunOptions(
        model=s.model,
        base_url=s.baseUrl,
        tool_mode=s.toolMode,
        local_model=s.localModel,
        guided=s.guided,
        limits=s.limits(),
        sandbox=s.sandbox,
        network=s.network,
    )


def register(server: NexusServer) -> None:
    view = LiveView(server)
    server.event_hooks.append(view.event)
    server.finish_hooks.append(view.finish)

    @server.command("nexus.run")
    async def run(ls: NexusServer, *args: Any) -> dict[str, str]:
        params = one_object(args, "task")
        task, uri = params["task"], params.get("uri")
        if not isinstance(task, str) or not task.strip():
            raise user_error("task must be a non-empty string saying what the agent should do")
        state = ls.state_for(uri)
        supervisor = state.require()
        context = ""
        if uri:
            context = selection_context(
                ls, supervisor.ws.root, uri, params.get("range"), params.get("diagnostics")
            )
        options = run_options(ls.settings)  # the settings now: a later change is for later runs
        prepared = await off_loop(lambda: prepare_run(task, options, context=context))
        if prepared.notice and not view.told_bundled:
            view.told_bundled = True
            ls.window_show_message(
                types.ShowMessageParams(type=types.MessageType.Info, message=prepared.notice)
            )
        token = await view.begin(task)
        try:
            record = await off_loop(prepared.start, supervisor)
        except Exception:
            if token:
                ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message="not started"))
            raise
        if token:
            view.attach(token, record, supervisor.cancel)
        return {"runId": record.id, "branch": record.branch}

    @server.command("nexus.cancel")
    async def cancel(ls: NexusServer, *args: Any) -> dict[str, Any]:
        supervisor, record = ls.find_run(one_object(args, "runId")["runId"])
        if record.finished:
            raise user_error(f"run {record.id} already ended: {record.status}")
        if not supervisor.cancel(record.id):
            raise user_error(
                f"run {record.id} was not started by this server; stop it where it runs"
            )
        return {"runId": record.id, "cancelling": True}

    @server.command("nexus.runs")
    async def runs(ls: NexusServer, *args: Any) -> list[dict[str, Any]]:
        if args:
            one_object(args)
        listed: list[Listed] = []
        states = [ls.state(root) for root in ls.folders()]
        for state in states:
            if (supervisor := state.supervisor) is not None:
                listed.extend(await off_loop(list_runs, supervisor.ws, supervisor.store))
        if states and all(state.supervisor is None for state in states):
            states[0].require()  # no folder can hold runs: say why
        listed.sort(key=lambda r: r.id, reverse=True)
        return [
            {"runId": r.id, "task": r.task, "status": r.status, "branch": r.branch,
             "created": r.created, "review": r.review, "parent": r.parent, "depth": r.depth,
             "base": r.base, "head": r.head}
            if isinstance(r, RunRecord)
            else {"runId": r.id, "status": r.status, "error": r.error,
                  "branch": getattr(r, "branch", None)}
            for r in listed
        ]  # fmt: skip
