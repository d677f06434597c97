"""`nexus acp`: NEXUS as an Agent Client Protocol agent on stdio, through the
`agent-client-protocol` SDK (which owns the protocol's schema and its JSON-RPC).

A session is a workspace (`session/new`'s `cwd`, inside a git repository); each
`session/prompt` starts one run there, the prompt's text as its task, through
`run_start` as the command line and the language server do, and answers when the run
ends. What the run does streams as `session/update`s (`updates.py`); a command the policy
asks about is a `session/request_permission`; `session/cancel` cancels the run.

The supervisors report from their threads; everything reaches the event loop through
`call_soon_threadsafe` and each session's queue, which the prompt in progress drains in
order, so a client sees the updates in journal order and all of them before the answer.
Only the protocol goes to stdout: file descriptor 1 is pointed at stderr before anything
starts, and the protocol gets a descriptor of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import stat
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from acp import PROTOCOL_VERSION, RequestError, run_agent, stdio_streams
from acp.interfaces import Agent, Client
from acp.schema import (
    AgentCapabilities,
    ClientCapabilities,
    EmbeddedResourceContentBlock,
    Implementation,
    InitializeResponse,
    NewSessionResponse,
    PromptCapabilities,
    PromptResponse,
    ResourceContentBlock,
    TextContentBlock,
    TextResourceContents,
    ToolCallUpdate,
)

from nexus_ls import __version__
from nexus_ls.acp import updates
from nexus_ls.errors import NexusError
from nexus_ls.run_start import RunOptions, prepare_run
from nexus_ls.runs import RunRecord
from nexus_ls.sandbox import Workspace, open_workspace
from nexus_ls.sandbox.repo import run_git
from nexus_ls.supervisor import Supervisor

log = logging.getLogger(__name__)
INVALID_PARAMS = -32602  # the request cannot be served as sent; the message says why
CANNOT_START = -32603  # the run could not start (a setting, the model); the message says how
ANSWER_TIMEOUT = 3600.0  # a question nobody answers for an hour is a refusal
TEXT_LIMIT = 1_000_000  # bytes of a file's text sent whole in a diff


def error(code: int, message: str) -> RequestError:
    return RequestError(code, message)


@dataclass
class Session:
    id: str
    root: Path
    supervisor: Supervisor
    queue: asyncio.Queue[tuple[Any, ...]] = field(default_factory=asyncio.Queue)
    run_id: str | None = None  # the run of the prompt in progress
    prompting: bool = False
    cancelled: bool = False  # a cancel came before the run had started
    asks: set[asyncio.Task[Any]] = field(default_factory=set)


class NexusAgent:
    """The ACP agent: sessions, prompts as runs, their updates and approvals."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.conn: Client | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sessions: dict[str, Session] = {}
        self.supervisors: dict[Path, Supervisor] = {}
        self.runs: dict[str, Session] = {}  # run id -> the session whose prompt started it
        # What runs said before their prompt knew their id: run id -> queue items.
        self.unclaimed: dict[str, list[tuple[Any, ...]]] = {}

    def on_connect(self, conn: Client) -> None:
        self.conn = conn

    # ACP methods
    async def initialize(
        self,
        protocol_version: int,
        client_capabilities: ClientCapabilities | None = None,
        client_info: Implementation | None = None,
        **kwargs: Any,
    ) -> InitializeResponse:
        self.loop = asyncio.get_running_loop()
        return InitializeResponse(
            protocol_version=min(protocol_version, PROTOCOL_VERSION),
            agent_capabilities=AgentCapabilities(
                load_session=False,
                prompt_capabilities=PromptCapabilities(embedded_context=True),
            ),
            agent_info=Implementation(name="nexus", title="NEXUS", version=__version__),
            auth_methods=[],
        )

    async def new_session(
        self,
        cwd: str,
        additional_directories: list[str] | None = None,
        mcp_servers: list[Any] | None = None,
        **kwargs: Any,
    ) -> NewSessionResponse:
        self.loop = asyncio.get_running_loop()
        if not os.path.isabs(cwd):
            raise error(INVALID_PARAMS, f"cwd must be an absolute path, not {cwd!r}")
        try:
            supervisor = await asyncio.to_thread(self.supervisor_for, cwd)
        except NexusError as exc:
            raise error(INVALID_PARAMS, str(exc)) from None
        session = Session(uuid.uuid4().hex, Path(supervisor.ws.root), supervisor)
        self.sessions[session.id] = session
        return NewSessionResponse(session_id=session.id)

    async def prompt(self, session_id: str, prompt: list[Any], **kwargs: Any) -> PromptResponse:
        session = self.session(session_id)
        task, context = prompt_text(prompt)
        if not task:
            raise error(INVALID_PARAMS, "the prompt has no text; say what the agent should do")
        if session.prompting:
            raise error(
                INVALID_PARAMS,
                f"session {session_id} is running a prompt already; wait for it or cancel it",
            )
        session.prompting, session.cancelled = True, False
        session.queue = asyncio.Queue()
        try:
            record = await self.start(session, task, context)
            return await self.follow(session, record)
        finally:
            self.settle(session)

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        session = self.sessions.get(session_id)
        if session is None or not session.prompting:
            return  # a notification: nothing to answer, nothing to cancel
        session.cancelled = True
        if session.run_id is not None:
            session.supervisor.cancel(session.run_id)

    # runs
    def session(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None:
            raise error(
                INVALID_PARAMS, f"there is no session {session_id!r}; start one with session/new"
            )
        return session

    def supervisor_for(self, cwd: str) -> Supervisor:
        ws: Workspace = open_workspace(cwd)
        root = Path(ws.root)
        if root not in self.supervisors:
            self.supervisors[root] = Supervisor(
                ws,
                on_event=lambda event: self.from_thread(self.route, event),
                on_finish=lambda record: self.from_thread(self.finished, record),
                approver=self.approve,
                spare=True,  # a long-lived host keeps one agent waiting: runs start fast
            )
        return self.supervisors[root]

    async def start(self, session: Session, task: str, context: str) -> RunRecord:
        def start() -> tuple[RunRecord, str | None]:
            prepared = prepare_run(task, self.options, context=context)
            if prepared.notice:
                print(f"nexus: {prepared.notice}", file=sys.stderr, flush=True)
            return prepared.start(session.supervisor), prepared.notice

        try:
            record, notice = await asyncio.to_thread(start)
        except NexusError as exc:
            raise error(CANNOT_START, str(exc)) from None
        session.run_id = record.id
        self.runs[record.id] = session
        if notice:
            session.queue.put_nowait(("say", f"{notice}\n"))
        # What it said while it was being made (even its end, for a run that ended at once).
        for run_id in [
            r for r in self.unclaimed if r == record.id or r.startswith(f"{record.id}-")
        ]:
            for item in self.unclaimed.pop(run_id):
                session.queue.put_nowait(item)
        if session.cancelled:
            session.supervisor.cancel(record.id)
        return record

    async def follow(self, session: Session, record: RunRecord) -> PromptResponse:
        """Send the run's updates as they come, in order; answer when it has ended."""
        mapper = updates.RunUpdates(record.id, session.root)
        while True:
            item = await session.queue.get()
            if item[0] == "event":
                event = item[1]
                texts = None
                if updates.is_commit(event):
                    texts = await asyncio.to_thread(commit_texts, session.root, event["data"])
                for update in mapper.event(event, texts):
                    await self.send(session, update)
            elif item[0] == "say":
                await self.send(session, updates.message(item[1]))
            elif item[0] == "ask":
                task = asyncio.ensure_future(self.ask(session, mapper, *item[1:]))
                session.asks.add(task)
                task.add_done_callback(session.asks.discard)
            elif item[0] == "end":
                ended: RunRecord = item[1]
                outcome = ended.error or ended.summary or ended.task
                for update in mapper.end(ended.id, ended.status, outcome, ended.branch):
                    await self.send(session, update)
                return PromptResponse(stop_reason=updates.stop_reason(ended.status, ended.error))

    async def send(self, session: Session, update: updates.Update) -> None:
        assert self.conn is not None
        await self.conn.session_update(session_id=session.id, update=update)

    def settle(self, session: Session) -> None:
        """The prompt is over (answered, failed or abandoned by the client): a run still
        going is cancelled, questions still open are refusals."""
        session.prompting = False
        if session.run_id is not None:
            session.supervisor.cancel(session.run_id)  # False if it has ended: nothing to do
            self.runs.pop(session.run_id, None)
        session.run_id = None
        for task in list(session.asks):
            task.cancel()
        while not session.queue.empty():
            item = session.queue.get_nowait()
            if item[0] == "ask" and not item[3].done():
                item[3].set_result(("deny", "the ACP prompt was over"))

    # from the supervisors' threads
    def from_thread(self, fn: Any, *args: Any) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(fn, *args)

    def session_of(self, run_id: str) -> Session | None:
        """The session of a run, or of the run tree it is a sub-agent in (`<root>-<n>`)."""
        if run_id in self.runs:
            return self.runs[run_id]
        for root, session in self.runs.items():
            if run_id.startswith(f"{root}-"):
                return session
        return None

    def route(self, event: dict[str, Any]) -> None:
        run_id = event.get("run")
        if not isinstance(run_id, str):
            return  # the workspace's own (a memory change): no run, no session
        self.deliver(run_id, ("event", event))

    def finished(self, record: RunRecord) -> None:
        if record.parent is None:  # a sub-agent's end is its parent's event, not the prompt's
            self.deliver(record.id, ("end", record))

    def deliver(self, run_id: str, item: tuple[Any, ...]) -> None:
        session = self.session_of(run_id)
        if session is not None:
            session.queue.put_nowait(item)
            return
        if len(self.unclaimed) > 20:  # runs that never got a session (a failed start)
            self.unclaimed.pop(next(iter(self.unclaimed)))
        self.unclaimed.setdefault(run_id, []).append(item)

    def approve(self, record: RunRecord, request: dict[str, Any]) -> tuple[str, str]:
        """The supervisor's approver (on one of its threads): the client's user answers."""
        answer: concurrent.futures.Future[tuple[str, str]] = concurrent.futures.Future()

        def put() -> None:
            session = self.session_of(record.id)
            if session is None or not session.prompting:
                answer.set_result(("deny", "no ACP prompt is following this run"))
            else:
                session.queue.put_nowait(("ask", record, request, answer))

        if self.loop is None or self.loop.is_closed():
            return "deny", "the ACP client is gone"
        self.loop.call_soon_threadsafe(put)
        try:
            return answer.result(timeout=ANSWER_TIMEOUT)
        except concurrent.futures.TimeoutError:
            return "deny", f"no answer from the ACP client within {ANSWER_TIMEOUT:g} s"

    async def ask(
        self,
        session: Session,
        mapper: updates.RunUpdates,
        record: RunRecord,
        request: dict[str, Any],
        answer: concurrent.futures.Future[tuple[str, str]],
    ) -> None:
        """One `session/request_permission`, about the run's call in progress."""
        assert self.conn is not None
        running = [i for i in mapper.open if i.startswith(f"{record.id}/")]
        call_id = running[-1] if running else f"{record.id}/approval"
        tool_call = ToolCallUpdate(
            tool_call_id=call_id,
            title=updates.permission_title(request),
            kind="execute",
            status="pending",
            raw_input=request,
        )
        try:
            response = await self.conn.request_permission(
                session_id=session.id, tool_call=tool_call, options=list(updates.OPTIONS)
            )
            result = updates.decision(response)
        except asyncio.CancelledError:
            result = ("deny", "the ACP prompt was over before an answer came")
            raise
        except Exception as exc:  # a client's error answer, or the connection gone
            result = ("deny", f"asking the ACP client failed ({type(exc).__name__}: {exc})")
        finally:
            if not answer.done():
                answer.set_result(result)

    def stop(self) -> None:
        for supervisor in self.supervisors.values():
            supervisor.stop_all()


def prompt_text(blocks: list[Any]) -> tuple[str, str]:
    """The task (the prompt's text) and its context (files the client attached)."""
    words: list[str] = []
    context: list[str] = []
    for block in blocks:
        if isinstance(block, TextContentBlock):
            words.append(block.text)
        elif isinstance(block, EmbeddedResourceContentBlock):
            resource = block.resource
            if isinstance(resource, TextResourceContents):
                context.append(f"{resource.uri} (attached by the user):\n```\n{resource.text}\n```")
        elif isinstance(block, ResourceContentBlock):
            context.append(f"The user refers to {block.uri}.")
    return "\n".join(words).strip(), "\n\n".join(context)


def commit_texts(root: Path, data: dict[str, Any]) -> updates.Texts:
    """Each file of a step's commit, before and after it (a file not text, or too big to
    send whole, is left out: the patch stands for it)."""
    commit = str(data.get("commit"))
    texts: dict[str, tuple[str | None, str | None]] = {}
    for path in data.get("files") or []:
        if not isinstance(path, str):
            continue
        try:
            before, after = (file_at(root, f"{commit}^", path), file_at(root, commit, path))
        except (UnicodeDecodeError, ValueError):
            continue
        if before is not None or after is not None:
            texts[path] = (before, after)
    return texts


def file_at(root: Path, commit: str, path: str) -> str | None:
    found = run_git(root, "show", f"{commit}:{path}")
    if found.status != 0:
        return None  # not in that commit: added, or deleted
    if len(found.stdout) > TEXT_LIMIT or b"\0" in found.stdout:
        raise ValueError("not text NEXUS sends whole")
    return found.stdout.decode("utf-8")


async def serve(agent: NexusAgent) -> None:
    """Speak ACP on this process's stdin and the descriptor stdout was, until the client
    closes it; then stop every run still going."""
    protocol_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # what anything else writes to stdout (a stray print, a child) is stderr
    real_stdout, sys.stdout = sys.stdout, protocol_out  # type: ignore[assignment]
    try:
        reader, writer = await stdio_streams(limit=50 * 1024 * 1024)
    finally:
        sys.stdout = real_stdout
    try:
        # The methods NEXUS serves; the SDK answers the others with "method not found".
        await run_agent(cast(Agent, agent), writer, reader)
    finally:
        await asyncio.to_thread(agent.stop)


def check_stdio() -> None:
    """ACP runs over pipes (or a socket, a terminal) that a client holds; asyncio cannot
    stream a regular file, so say so instead of failing inside the event loop."""
    for fd, name in ((0, "stdin"), (1, "stdout")):
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
            raise NexusError(
                f"nexus acp speaks on its {name} as a pipe, not a file; "
                "let an ACP client (Zed, JetBrains) start it"
            )


class OneLine(logging.Formatter):
    """Log records as one line each on stderr, an exception as its type and message: what
    a client sends that cannot be read (a line that is not JSON, which the SDK logs and
    skips) is said, never as a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text = f"{text} ({type(exc).__name__}: {exc})"
        return "nexus acp: " + " ".join(text.split())


def main(options: RunOptions) -> int:
    check_stdio()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLine())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    agent = NexusAgent(options)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(agent))
    return 0
