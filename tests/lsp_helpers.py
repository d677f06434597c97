"""An editor for the language server's end-to-end tests.

A pytest-lsp client that keeps what a real editor keeps: every `nexus/event`, the progress
it was asked to show, and the open buffers, which it really edits when the server sends
`workspace/applyEdit` (and then tells the server, as an editor would, with `didChange`).
Tests wait on what arrives with deadlines, never with sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, Union

from cattrs import Converter
from conftest import clean_env, sh
from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES
from scripted_model import Reply, Step

PRESETS = ("visual-studio-code", "neovim")
DEADLINE = 40.0  # generous: CI machines are slow; a passing test never waits this long
FINAL = re.compile(r"run (succeeded|failed|cancelled|interrupted)\b")
T = TypeVar("T")


def plain(value: Any) -> Any:
    """pygls hands custom notifications over as namedtuples; tests compare plain JSON."""
    if hasattr(value, "_asdict"):
        return {key: plain(item) for key, item in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def offset(text: str, position: types.Position) -> int:
    """A position's index in `text`; past the last line means the end, as editors clamp."""
    lines = text.split("\n")
    if position.line >= len(lines):
        return len(text)
    start = sum(len(line) + 1 for line in lines[: position.line])
    return start + min(position.character, len(lines[position.line]))


def apply_text_edits(text: str, edits: Sequence[types.TextEdit]) -> str:
    for edit in sorted(edits, key=lambda e: offset(text, e.range.start), reverse=True):
        text = (
            text[: offset(text, edit.range.start)]
            + edit.new_text
            + text[offset(text, edit.range.end) :]
        )
    return text


def uri(path: Path) -> str:
    return path.as_uri()


def span(start: int, end: int, end_char: int = 0) -> dict[str, Any]:
    """An LSP range as JSON, from line `start` to line `end` (0-based)."""
    return {"start": {"line": start, "character": 0}, "end": {"line": end, "character": end_char}}


def branch_file(repo: Path, branch: str, path: str) -> str:
    return sh(repo, "git", "show", f"{branch}:{path}")


def branches(repo: Path) -> list[str]:
    return sh(repo, "git", "branch", "--format=%(refname:short)").split()


def by_task(scripts: dict[str, list[Reply]]) -> Step:
    """Replies chosen by the task a request is about and how many turns it has had, so runs
    going at once against one scripted server each follow their own script."""

    def step(body: dict[str, Any]) -> Reply:
        messages = body.get("messages", [])
        first = next((str(m.get("content")) for m in messages if m.get("role") == "user"), "")
        turns = sum(1 for m in messages if m.get("role") == "assistant")
        for key, replies in scripts.items():
            if key in first:
                return {**replies[min(turns, len(replies) - 1)], "again": True}
        return {"status": 400, "error": "no script for this task", "again": True}

    return step


def first_prompt(requests: list[dict[str, Any]]) -> str:
    """The user message of the first chat request a scripted server received."""
    messages = requests[0]["messages"]
    return next(str(m["content"]) for m in messages if m["role"] == "user")


class Editor(LanguageClient):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.events: list[dict[str, Any]] = []  # {"runId", "event"} as sent
        self.buffers: dict[str, str] = {}
        self.versions: dict[str, int] = {}
        self.applied_edits: list[types.ApplyWorkspaceEditParams] = []
        self.created_tokens: list[types.ProgressToken] = []
        self.configuration_requests = 0
        self.handler_errors: list[str] = []
        self.changed = asyncio.Event()
        self.answers: list[str | None] = []  # titles to click, in order (None: dismiss)
        self.questions: list[types.ShowMessageRequestParams] = []

    # what arrives from the server
    def on_event(self, params: Any) -> None:
        try:
            self.events.append(plain(params))
        except Exception as exc:  # a raising handler hangs pytest-lsp; record it instead
            self.handler_errors.append(f"nexus/event: {exc!r}")
        self.changed.set()

    def on_apply_edit(
        self, params: types.ApplyWorkspaceEditParams
    ) -> types.ApplyWorkspaceEditResult:
        self.applied_edits.append(params)
        try:
            for target, edits in (params.edit.changes or {}).items():
                if target not in self.buffers:
                    return types.ApplyWorkspaceEditResult(
                        applied=False, failure_reason=f"{target} is not open"
                    )
                self.change(target, apply_text_edits(self.buffers[target], edits))
            return types.ApplyWorkspaceEditResult(applied=True)
        except Exception as exc:
            self.handler_errors.append(f"workspace/applyEdit: {exc!r}")
            return types.ApplyWorkspaceEditResult(applied=False, failure_reason=repr(exc))
        finally:
            self.changed.set()

    def on_question(self, params: types.ShowMessageRequestParams) -> types.MessageActionItem | None:
        """A user clicking the next scripted answer (dismissing when there is none)."""
        self.questions.append(params)
        self.changed.set()
        title = self.answers.pop(0) if self.answers else None
        return None if title is None else types.MessageActionItem(title=title)

    def watching(self, method: str, default: Callable[..., Any]) -> Callable[[Any], Any]:
        def handler(params: Any) -> Any:
            try:
                if method == types.WINDOW_WORK_DONE_PROGRESS_CREATE:
                    self.created_tokens.append(params.token)
                if method == types.WORKSPACE_CONFIGURATION:
                    self.configuration_requests += 1
                return default(self, params)
            finally:
                self.changed.set()

        return handler

    # waiting
    async def until(self, check: Callable[[], T], what: str, timeout: float = DEADLINE) -> T:
        """The first truthy value of `check()`, re-checked whenever something arrives."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = check()
            if result:
                return result
            self.changed.clear()
            left = deadline - loop.time()
            if left <= 0:
                seen = [e["event"]["message"] for e in self.events[-8:]]
                raise AssertionError(f"timed out waiting for {what}; last events: {seen}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)

    # the session
    async def start(
        self,
        folders: Sequence[Path],
        preset: str = "visual-studio-code",
        options: dict[str, Any] | None = None,
        capabilities: types.ClientCapabilities | None = None,
        root_only: bool = False,
    ) -> None:
        """`initialize` with the folders (or, as older clients do, only a root URI)."""
        folders_sent = [types.WorkspaceFolder(uri=uri(f), name=f.name) for f in folders]
        await self.initialize_session(
            types.InitializeParams(
                capabilities=capabilities or client_capabilities(preset),
                root_uri=uri(folders[0]),
                workspace_folders=None if root_only else folders_sent,
                initialization_options=None if options is None else {"nexus": options},
            )
        )

    async def close(self) -> None:
        """Shut the server down properly if it still runs (agents stop, runs are recorded)."""
        server = self._server
        if server is None or server.returncode is not None:
            return
        if self.capabilities is None or self.error is not None:
            server.kill()
            return
        try:
            await asyncio.wait_for(self.shutdown_session(), DEADLINE)
        except asyncio.TimeoutError:
            server.kill()
            raise

    async def command(self, name: str, *arguments: Any) -> Any:
        return await self.workspace_execute_command_async(
            types.ExecuteCommandParams(command=name, arguments=list(arguments))
        )

    async def run(self, task: str, **extra: Any) -> str:
        started = await self.command("nexus.run", {"task": task, **extra})
        assert started["branch"] == f"nexus/{started['runId']}"
        return str(started["runId"])

    def run_events(self, run_id: str) -> list[dict[str, Any]]:
        return [e["event"] for e in self.events if e["runId"] == run_id]

    async def finished(self, run_id: str) -> dict[str, Any]:
        """The run's last event ("run <status>: ..."), once it has arrived."""

        def final() -> dict[str, Any] | None:
            ends = [e for e in self.run_events(run_id) if FINAL.match(e["message"])]
            return ends[0] if ends else None

        return await self.until(final, f"run {run_id} to end")

    async def saw(self, run_id: str, check: Callable[[dict[str, Any]], bool], what: str) -> None:
        await self.until(lambda: any(check(e) for e in self.run_events(run_id)), what)

    def progress(self, task: str) -> tuple[types.ProgressToken, list[Any]]:
        """The progress token begun with `task` and everything reported on it."""
        for token, values in self.progress_reports.items():
            if (
                values
                and isinstance(values[0], types.WorkDoneProgressBegin)
                and (values[0].message == task)
            ):
                return token, values
        raise AssertionError(f"no progress began with {task!r}")

    async def progress_end(self, task: str) -> types.WorkDoneProgressEnd:
        def ended() -> Any:
            found = [
                values[-1]
                for values in self.progress_reports.values()
                if values and getattr(values[0], "message", None) == task
            ]
            return found and isinstance(found[0], types.WorkDoneProgressEnd) and found[0]

        return await self.until(ended, f"progress of {task!r} to end")

    def shown(self, fragment: str) -> list[str]:
        return [m.message for m in self.messages if fragment in m.message]

    # documents
    def open(self, path: Path, text: str | None = None) -> str:
        """Open a file as an editor does; `text` is the buffer when it differs from disk."""
        target = uri(path)
        self.buffers[target] = path.read_text() if text is None else text
        self.versions[target] = 1
        self.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=target, language_id="python", version=1, text=self.buffers[target]
                )
            )
        )
        return target

    def change(self, target: str, text: str) -> None:
        self.buffers[target] = text
        self.versions[target] += 1
        self.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(
                    uri=target, version=self.versions[target]
                ),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )


def converter() -> Converter:
    """pygls' converter, reading `Command | CodeAction` as the spec says (a Command's `command`
    is a string): lsprotocol 2025.0.0 takes any object with a `command` key for a Command, so
    a CodeAction that carries one would reach the tests garbled."""
    converter = default_converter()

    def command_or_action(value: Any, _: type) -> types.Command | types.CodeAction:
        command = isinstance(value.get("command"), str)
        return converter.structure(value, types.Command if command else types.CodeAction)

    converter.register_structure_hook(Union[types.Command, types.CodeAction], command_or_action)  # noqa: UP007
    return converter


def make_editor() -> Editor:
    editor = Editor(converter_factory=converter)
    for method, default in DEFAULT_CLIENT_FEATURES.items():
        editor.feature(method)(editor.watching(method, default))
    # pygls marks handlers with attributes, which bound methods cannot carry
    editor.feature("nexus/event")(lambda params: editor.on_event(params))
    editor.feature(types.WORKSPACE_APPLY_EDIT)(lambda params: editor.on_apply_edit(params))
    editor.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)(lambda params: editor.on_question(params))
    return editor


def server_command() -> list[str]:
    exe = shutil.which("nexus-ls")
    return (
        [exe]
        if exe
        else [sys.executable, "-c", "from nexus_ls.cli import serve_main; serve_main()"]
    )


# The server (and the agents it starts) run this checkout's code, whichever copy of the
# package happens to be installed.
SOURCE = str(Path(__file__).resolve().parents[1])
SERVER = ClientServerConfig(
    server_command=server_command(),
    server_env=clean_env(PYTHONPATH=SOURCE),
    client_factory=make_editor,
)
