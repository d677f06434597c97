"""The NEXUS language server object: workspaces, settings, and the bridge from run threads.

Runs are driven by each workspace's `Supervisor` on threads of its own; what they report
comes back to the event loop through `call_soon_threadsafe`, so handlers never block the
loop and notifications are sent from the loop's thread only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from nexus_ls import __version__
from nexus_ls.errors import NexusError
from nexus_ls.runs import RunRecord
from nexus_ls.sandbox import Workspace, open_workspace
from nexus_ls.server.settings import ServerSettings
from nexus_ls.supervisor import Approver, Supervisor, no_one_to_ask

log = logging.getLogger(__name__)
NEXUS_ERROR = -32000  # JSON-RPC server-error range: a problem the user can fix


def user_error(message: str) -> JsonRpcException:
    return JsonRpcException(message=message, code=NEXUS_ERROR)


def path_of(uri: str) -> Path:
    if not isinstance(uri, str):  # it comes straight from a command's JSON arguments
        raise JsonRpcInvalidParams(message="uri must be a string such as file:///path/to/file")
    parsed = urlparse(uri)
    if parsed.scheme not in ("file", ""):
        raise user_error(f"{uri} is not a file: NEXUS works on files on disk")
    path = unquote(parsed.path)
    if "\0" in path or not path.startswith("/"):
        raise user_error(f"{uri} is not a file URI NEXUS can use (an absolute path, no NUL)")
    # Neither `..` nor a link may lead out of the folder the path is then checked to be in.
    return Path(os.path.realpath(path))


def one_object(args: tuple[Any, ...], *required: str) -> dict[str, Any]:
    """The single object argument every NEXUS command takes, with its required keys."""
    if len(args) != 1 or not isinstance(args[0], dict):
        raise JsonRpcInvalidParams(message="NEXUS commands take exactly one object argument")
    missing = [key for key in required if key not in args[0]]
    if missing:
        raise JsonRpcInvalidParams(message=f"missing argument: {', '.join(missing)}")
    return dict(args[0])


class WorkspaceState:
    """One workspace folder's NEXUS: its supervisor, or why it cannot have one."""

    def __init__(self, root: Path, server: NexusServer) -> None:
        self.root = root
        self.error: str | None = None
        self.ws: Workspace | None = None
        self.supervisor: Supervisor | None = None
        try:
            self.ws = open_workspace(root)
        except NexusError as exc:
            self.error = str(exc)
            return
        self.supervisor = Supervisor(
            self.ws,
            on_event=lambda event: server.from_thread(server.on_event, event),
            on_finish=lambda record: server.from_thread(server.on_finish, record),
            approver=lambda record, request: server.approve(record, request),
            spare=True,  # a long-lived host keeps one agent waiting: runs start in ~0.2 s
        )

    def require(self) -> Supervisor:
        if self.supervisor is None:
            raise user_error(self.error or f"{self.root} has no NEXUS state")
        return self.supervisor


class NexusServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("nexus-ls", __version__)
        self.settings = ServerSettings()
        self.options: dict[str, Any] = {}  # valid `nexus` initializationOptions
        self.states: dict[Path, WorkspaceState] = {}
        self.states_lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.event_hooks: list[Callable[[dict[str, Any]], None]] = []
        self.finish_hooks: list[Callable[[RunRecord], None]] = []
        self.approver: Approver | None = None  # set by the approvals feature

    def approve(self, record: RunRecord, request: dict[str, Any]) -> tuple[str, str]:
        """Whether a command may run, as the editor's user answers (from a run thread)."""
        if self.approver is None:
            return no_one_to_ask(record, request)
        return self.approver(record, request)

    # workspaces
    def folders(self) -> list[Path]:
        folders = [path_of(f.uri) for f in self.workspace.folders.values()]
        if not folders and self.workspace.root_path:
            folders = [Path(self.workspace.root_path)]
        return folders

    def state(self, root: Path) -> WorkspaceState:
        with self.states_lock:  # made from the loop and from the start-up warm-up thread
            if root not in self.states:
                self.states[root] = WorkspaceState(root, self)
            return self.states[root]

    def state_for(self, uri: str | None) -> WorkspaceState:
        """The workspace folder holding `uri` (the deepest one), else the first folder."""
        folders = self.folders()
        if not folders:
            raise user_error("no workspace folder is open; open a folder inside a git repository")
        if uri:
            path = path_of(uri)
            holding = [f for f in folders if path == f or f in path.parents]
            if holding:
                return self.state(max(holding, key=lambda f: len(f.parts)))
            raise user_error(f"{path} is not inside an open workspace folder")
        return self.state(folders[0])

    def find_run(self, run_id: Any) -> tuple[Supervisor, RunRecord]:
        if not isinstance(run_id, str) or not run_id:
            raise JsonRpcInvalidParams(message="runId must be a non-empty string")
        errors = []
        for root in self.folders():
            state = self.state(root)
            if state.supervisor is None:
                continue
            try:
                return state.supervisor, state.supervisor.store.find(run_id)
            except NexusError as exc:
                errors.append(str(exc))
        raise user_error(errors[0] if errors else f"no run matches {run_id!r}")

    # threads -> loop
    def from_thread(self, fn: Callable[..., None], *args: Any) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(fn, *args)

    def on_event(self, event: dict[str, Any]) -> None:
        for hook in self.event_hooks:
            hook(event)

    def on_finish(self, record: RunRecord) -> None:
        for hook in self.finish_hooks:
            hook(record)

    def keep(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run a background task that is kept referenced and whose failure is logged."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self.tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background task failed", exc_info=t.exception())

        task.add_done_callback(done)
        return task


async def off_loop(fn: Callable[..., Any], *args: Any) -> Any:
    """Run blocking work (git, journal search, process start) off the event loop; a
    NexusError becomes a JSON-RPC error with its message."""
    try:
        return await asyncio.to_thread(fn, *args)
    except NexusError as exc:
        raise user_error(str(exc)) from None
