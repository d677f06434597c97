"""Malformed JSON-RPC, sent as raw bytes to a real `nexus-ls` over stdio: every request
gets the error the spec gives, and the server goes on answering."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_repo
from raw_lsp import RawClient

INITIALIZE = {"processId": None, "rootUri": None, "capabilities": {}}


@pytest.fixture
def raw(tmp_path: Path) -> Iterator[RawClient]:
    client = RawClient(make_repo(tmp_path / "p", {"a.txt": "a\n"}))
    yield client
    client.close()


def execute(msg_id: int, params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "method": "workspace/executeCommand", "params": params}


def test_a_command_before_initialize_is_not_initialized_without_a_traceback(raw) -> None:
    raw.send(execute(1, {"command": "nexus.runs", "arguments": [{}]}))

    error = raw.response(1)["error"]

    assert error["code"] == -32002
    assert "not initialized" in error["message"]
    assert "data" not in error and "Traceback" not in json.dumps(error)


MALFORMED: list[tuple[bytes | dict[str, Any], Any, int]] = [
    (b'{"jsonrpc": "2.0", "id": 2, "method": ', None, -32700),
    (b"\xff\xfe not even text", None, -32700),
    ([{"jsonrpc": "2.0", "id": 3, "method": "shutdown"}], None, -32600),  # type: ignore[list-item]
    (b"42", None, -32600),
    ({"jsonrpc": "2.0", "id": 4, "method": None}, 4, -32600),
    ({"jsonrpc": "2.0", "id": 5}, 5, -32600),
    (execute(6, "a string"), 6, -32602),
    (execute(7, {"arguments": [{}]}), 7, -32602),
    (execute(8, {"command": 5}), 8, -32602),
    (execute(9, {"command": "nexus.runs", "arguments": {"not": "an array"}}), 9, -32602),
    ({"jsonrpc": "2.0", "id": 10, "method": "textDocument/codeAction", "params": {"x": 1}},
     10, -32602),
    ({"jsonrpc": "2.0", "id": 11, "method": "no/such/method"}, 11, -32601),
    (b"[" * 200_000 + b"]" * 200_000, None, -32700),
    (b'{"jsonrpc": "2.0", "id": 12, "method": "workspace/executeCommand", "params": '
     b'{"command": "nexus.runs", "arguments": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}}",
     None, -32700),
    ({"jsonrpc": "2.0", "id": {"an": "object"}, "method": "shutdown"}, None, -32600),
    ({"jsonrpc": "2.0", "id": True, "method": "shutdown"}, None, -32600),
]  # fmt: skip


def test_every_malformed_request_is_answered_and_the_server_keeps_working(raw) -> None:
    raw.send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INITIALIZE})
    assert "capabilities" in raw.response(0)["result"]
    raw.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})

    for body, msg_id, code in MALFORMED:
        raw.send(json.dumps(body).encode() if isinstance(body, list) else body)
        answer = raw.response(msg_id)
        assert answer["error"]["code"] == code, (body, answer)
        assert "Traceback" not in json.dumps(answer)

    raw.send(execute(99, {"command": "nexus.runs", "arguments": [{}]}))
    assert raw.response(99)["result"] == []


def test_bad_framing_is_answered_and_the_stream_recovers(raw) -> None:
    raw.send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INITIALIZE})
    raw.response(0)
    assert raw.proc.stdin is not None
    for header in (b"Content-Length: -5\r\n\r\n", b"Content-Length: lots\r\n\r\n",
                   b"Content-Type: x\r\n\r\n"):  # fmt: skip
        raw.proc.stdin.write(header)
        raw.proc.stdin.flush()
        assert raw.response(None)["error"]["code"] == -32700
    # A short length: the body's tail runs into the next header, which is still found.
    body = json.dumps(execute(1, {"command": "nexus.runs", "arguments": [{}]})).encode()
    raw.proc.stdin.write(b"Content-Length: 10\r\n\r\n" + body)
    raw.proc.stdin.flush()
    assert raw.response(None)["error"]["code"] == -32700
    raw.send(execute(2, {"command": "nexus.runs", "arguments": [{}]}))
    assert raw.response(2)["result"] == []
    # A stray response is never answered; the next request still is.
    raw.send({"jsonrpc": "2.0", "id": "zzz", "error": {"code": 1, "message": "stray"}})
    raw.send(execute(3, {"command": "nexus.runs", "arguments": [{}]}))
    assert raw.receive()["id"] == 3


def test_a_length_no_stream_can_hold_closes_the_server_after_saying_so(raw) -> None:
    assert raw.proc.stdin is not None
    raw.proc.stdin.write(b"Content-Length: 99999999999999999999\r\n\r\n")
    raw.proc.stdin.flush()

    assert raw.response(None)["error"]["message"].endswith("too large; closing")
    assert raw.proc.wait(timeout=30) == 0
