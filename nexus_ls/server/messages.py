"""Every malformed message gets the JSON-RPC error the spec gives, never silence.

pygls drops a body that is not JSON, a batch, a `method` that is not a string or
`params` of the wrong type with only a log line, so the client waits for ever; and it
answers a request sent before `initialize` with an internal error carrying a Python
traceback. Bodies are checked here, as they are read, before pygls parses them: a bad
one is answered (-32700 not JSON, -32600 not a request, -32602 bad params, -32002 not
initialized) and replaced by a notification pygls ignores. A request without `params`
(optional in JSON-RPC, required by pygls) is given `params: null`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from typing import Any

from pygls.io_ import StdinAsyncReader, StdoutWriter, run_async
from pygls.protocol import JsonRPCProtocol

log = logging.getLogger(__name__)
PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS, NOT_INITIALIZED = -32700, -32600, -32602, -32002
# What pygls is handed instead of a bad body: a `$/` notification, which it ignores.
IGNORED = b'{"jsonrpc": "2.0", "method": "$/nexus/dropped", "params": {}}'
BEFORE_INITIALIZE = frozenset({"initialize", "exit"})


def problem(message: Any, initialized: bool) -> tuple[int, str] | None:
    """The error a parsed message deserves, or None when pygls can handle it."""
    if not isinstance(message, dict):
        return INVALID_REQUEST, "a message must be one JSON object (batches are not supported)"
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


class CheckedReader(StdinAsyncReader):
    """Reads bodies like pygls' own reader, answering the malformed ones itself."""

    def __init__(self, protocol: JsonRPCProtocol, *args: Any) -> None:
        super().__init__(*args)
        self.protocol = protocol
        self.initialized = False

    async def readexactly(self, n: int) -> bytes:
        body: bytes = await super().readexactly(n)
        try:
            message = json.loads(body)
        except ValueError as exc:
            self.answer(None, PARSE_ERROR, f"the message is not JSON: {exc}")
            return IGNORED
        found = problem(message, self.initialized)
        if found is None:
            if "method" in message and "params" not in message:
                # Optional in JSON-RPC, but pygls cannot build a message without it.
                body = json.dumps({**message, "params": None}).encode()
            try:  # params that do not fit the method's type fail inside pygls, unanswered
                json.loads(body, object_hook=self.protocol.structure_message)
            except Exception as exc:
                found = (INVALID_PARAMS, f"{message.get('method')}: params do not fit: {exc}")
            else:
                if message.get("method") == "initialize":
                    self.initialized = True
                return body
        msg_id = message.get("id") if isinstance(message, dict) else None
        if isinstance(message, dict) and "id" not in message and found[0] != INVALID_REQUEST:
            return IGNORED  # a notification is never answered; a bad one is dropped
        self.answer(msg_id if isinstance(msg_id, int | str) else None, *found)
        return IGNORED

    def answer(self, msg_id: int | str | None, code: int, message: str) -> None:
        log.warning("answered a malformed message with %s: %s", code, message)
        self.protocol._send_data(  # the one way pygls frames and writes a message
            {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}
        )


def serve_stdio(server: Any) -> None:
    """pygls' stdio loop with the checked reader in front."""
    server._stop_event = stop = threading.Event()
    reader = CheckedReader(server.protocol, sys.stdin.buffer, server.thread_pool)
    server.protocol.set_writer(StdoutWriter(sys.stdout.buffer))
    try:
        asyncio.run(
            run_async(
                stop_event=stop,
                reader=reader,
                protocol=server.protocol,
                logger=log,
                error_handler=server.report_server_error,
            )
        )
    except BrokenPipeError:
        log.error("the client closed the connection; shutting down")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()
