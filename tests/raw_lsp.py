"""A language client that writes JSON-RPC bodies byte for byte to a real `nexus-ls`: for
messages no well-behaved client sends, and for killing the server mid-run."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

from lsp_helpers import SERVER


class RawClient:
    """Frames bodies exactly as given, and reads whatever comes back."""

    def __init__(self, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            SERVER.server_command, cwd=cwd, env=SERVER.server_env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.buffer = b""

    def send(self, body: bytes | dict[str, Any]) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(data) + data)
        self.proc.stdin.flush()

    def receive(self, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            header, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if sep:
                fields = dict(line.split(b":", 1) for line in header.split(b"\r\n"))
                length = int(fields[b"Content-Length"])
                if len(rest) >= length:
                    self.buffer = rest[length:]
                    return dict(json.loads(rest[:length]))
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError("the server did not answer")
            self.buffer += os.read(fd, 65536)

    def request(self, msg_id: int, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def response(self, msg_id: Any) -> dict[str, Any]:
        """The next response with this id (notifications in between are skipped)."""
        while True:
            message = self.receive()
            if "id" in message and "method" not in message and message["id"] == msg_id:
                return message

    def close(self) -> str:
        self.proc.kill()
        _, stderr = self.proc.communicate()
        return stderr.decode(errors="replace")
