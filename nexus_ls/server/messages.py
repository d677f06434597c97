"""Every malformed message gets the JSON-RPC error the spec gives, never silence.

pygls drops a body that is not JSON, a batch, a `method` that is not a string or
`params` of the wrong type with only a log line, so the client waits for ever; it
answers a request sent before `initialize` with an internal error carrying a Python
traceback; and a bad `Content-Length` stops it reading, or kills it. Here the stream
is framed and each body checked before pygls sees it: a bad one is answered (-32700 not
JSON or badly framed, -32600 not a request, -32602 bad params, -32002 not initialized)
and never reaches pygls. A request without `params` (optional in JSON-RPC, required by
pygls) is given `params: null`. Responses are never answered, even malformed ones.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from pygls.io_ import StdinAsyncReader, StdoutWriter
from pygls.protocol import JsonRPCProtocol

log = logging.getLogger(__name__)
PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS, NOT_INITIALIZED = -32700, -32600, -32602, -32002
MAX_BODY = 256 * 1024 * 1024  # a body larger than this cannot be a real request
BEFORE_INITIALIZE = frozenset({"initialize", "exit"})


def problem(message: Any, initialized: bool) -> tuple[int, str] | None:
    """The error a parsed message deserves, or None when pygls can handle it."""
    if not isinstance(message, dict):
        return INVALID_REQUEST, "a message must be one JSON object (batches are not supported)"
    msg_id = message.get("id")
    if "id" in message and (isinstance(msg_id, bool) or not isinstance(msg_id, int | str)):
        return INVALID_REQUEST, "id must be a number or a string"
    if "method" not in message:
        if "id" in message and ("result" in message or "error" in message):
            return None  # a response to one of the server's requests
        return INVALID_REQUEST, "a message needs a method (or must be a response)"
    method, params = message["method"], message.get("params")
    if not isinstance(method, str):
        return INVALID_REQUEST, "method must be a string"
    if not initialized and method not in BEFORE_INITIALIZE:
        return NOT_INITIALIZED, f"{method}: the server is not initialized; send initialize first"
    if params is not None and not isinstance(params, dict | list):
        return INVALID_PARAMS, f"{method}: params must be an object or an array"
    if method == "workspace/executeCommand":
        if not isinstance(params, dict) or not isinstance(params.get("command"), str):
            return INVALID_PARAMS, "workspace/executeCommand needs params.command, a string"
        arguments = params.get("arguments")
        if arguments is not None and not isinstance(arguments, list):
            return INVALID_PARAMS, "workspace/executeCommand: arguments must be an array"
    return None


class Framing:
    """Reads framed messages, answering what is malformed and handing the rest to pygls."""

    def __init__(self, protocol: JsonRPCProtocol) -> None:
        self.protocol = protocol
        self.initialized = False

    async def serve(
        self,
        readline: Callable[[], Awaitable[bytes]],
        read: Callable[[int], Awaitable[bytes]],
        stop: threading.Event,
    ) -> None:
        while not stop.is_set():
            length = await self.header(readline)
            if length is None:
                return  # end of input, or a length no stream can be read past
            if length < 0:
                continue
            body = await read(length)
            if len(body) < length:
                return
            self.handle(body)

    async def header(self, readline: Callable[[], Awaitable[bytes]]) -> int | None:
        """The next body's length; -1 after answering a header block without a usable one."""
        length: int | None = None
        bad: bytes | None = None
        while True:
            line = await readline()
            if not line:
                return None
            if not line.strip():
                break
            # The rest of a short body runs into the next header: find the name at the end.
            at = line.lower().rfind(b"content-length:")
            if at >= 0:
                value = line[at + len(b"content-length:") :]
                try:
                    length = int(value.strip())
                except ValueError:
                    length, bad = None, value.strip()[:40]
        if length is None or length < 0:
            shown = f" ({bad!r})" if bad is not None else "" if length is None else f" ({length})"
            self.answer(None, PARSE_ERROR, f"a message needs a valid Content-Length header{shown}")
            return -1
        if length > MAX_BODY:
            self.answer(None, PARSE_ERROR, f"Content-Length {length} is too large; closing")
            return None
        return length

    def handle(self, body: bytes) -> None:
        try:
            message = json.loads(body)
        except (ValueError, RecursionError) as exc:
            self.answer(None, PARSE_ERROR, f"the message is not JSON: {_short(exc)}")
            return
        found = problem(message, self.initialized)
        if found is None:
            if "method" in message and "params" not in message:
                # Optional in JSON-RPC, but pygls cannot build a message without it.
                message = {**message, "params": None}
                body = json.dumps(message).encode()
            try:  # params that do not fit the method's type fail inside pygls, unanswered
                parsed = json.loads(body, object_hook=self.protocol.structure_message)
            except Exception as exc:
                if "method" not in message:
                    return  # a response is never answered, even a malformed one
                found = (INVALID_PARAMS, f"{message['method']}: params do not fit: {_short(exc)}")
            else:
                if message.get("method") == "initialize":
                    self.initialized = True
                try:
                    self.protocol.handle_message(parsed)
                except Exception:  # as pygls' own loop does: log it, keep serving
                    log.exception("could not handle a message")
                return
        is_dict = isinstance(message, dict)
        if is_dict and "method" not in message and found[0] != INVALID_REQUEST:
            return
        if is_dict and "method" in message and "id" not in message:
            return  # a notification is never answered; a bad one is dropped
        msg_id = message.get("id") if is_dict else None
        valid = isinstance(msg_id, int | str) and not isinstance(msg_id, bool)
        self.answer(msg_id if valid else None, *found)

    def answer(self, msg_id: int | str | None, code: int, message: str) -> None:
        log.warning("answered a malformed message with %s: %s", code, message)
        self.protocol._send_data(  # the one way pygls frames and writes a message
            {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}
        )


def _short(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0][:200]


def serve_stdio(server: Any) -> None:
    """pygls' stdio loop, with the checked framing in front of its protocol."""
    server._stop_event = stop = threading.Event()
    reader = StdinAsyncReader(sys.stdin.buffer, server.thread_pool)
    server.protocol.set_writer(StdoutWriter(sys.stdout.buffer))
    framing = Framing(server.protocol)
    try:
        asyncio.run(framing.serve(reader.readline, reader.readexactly, stop))
    except BrokenPipeError:
        log.error("the client closed the connection; shutting down")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()
