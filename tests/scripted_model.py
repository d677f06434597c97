"""The one test double NEXUS allows: a scripted OpenAI-compatible HTTP server.

It answers chat completions from a per-test script (tool calls, text, HTTP errors)
and records every request, so tests can check what reached the model. It serves
real HTTP on loopback; the code under test talks to it through the `openai` client.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = dict[str, Any]
Step = Reply | Callable[[dict[str, Any]], Reply]


def call(name: str, why: str = "", **arguments: Any) -> Reply:
    """A reply with one native tool call; `why` is the model's prose before it."""
    return {"content": why, "calls": [(name, json.dumps(arguments))]}


def raw_call(name: str, arguments: str, why: str = "") -> Reply:
    """A tool call whose arguments text is sent exactly as given (e.g. malformed JSON)."""
    return {"content": why, "calls": [(name, arguments)]}


def say(text: str) -> Reply:
    """A plain text reply (in text tool mode it may hold a fenced JSON call)."""
    return {"content": text, "calls": []}


def text_call(name: str, why: str = "", **arguments: Any) -> Reply:
    """A text-mode reply: prose and one fenced JSON block."""
    block = json.dumps({"tool": name, "arguments": arguments})
    return say(f"{why}\n```json\n{block}\n```")


def http_error(status: int, message: str = "scripted failure") -> Reply:
    return {"status": status, "error": message}


def hang() -> Reply:
    """A request that is never answered (the server holds it until the test ends)."""
    return {"hang": True}


def raw_body(body: str, status: int = 200) -> Reply:
    """An answer whose body is exactly `body` (e.g. an HTML error page with status 200)."""
    return {"raw": body, "raw_status": status}


def refuse_tools(then: Reply) -> Callable[[dict[str, Any]], Reply]:
    """Answer 400 when the request offers `tools` (an endpoint without tool calling)."""

    def step(body: dict[str, Any]) -> Reply:
        if "tools" in body:
            return {"status": 400, "error": "tools are not supported by this server", "again": True}
        return then

    return step


class ScriptedModel:
    """Serve `script` in order; `requests` holds each chat request body received."""

    def __init__(
        self,
        script: list[Step],
        models: tuple[str, ...] = ("scripted-model",),
        api_key: str | None = None,
    ) -> None:
        self.script = list(script)
        self.models = models
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.hits: list[tuple[str, str]] = []  # (method, path) of every HTTP request
        self._lock = threading.Lock()
        self.released = threading.Event()  # ends every `hang` at shutdown
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> ScriptedModel:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()

    def next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(body)
            if not self.script:
                return {"status": 400, "error": "the test script has no more replies"}
            step = self.script[0]
            reply = step(body) if callable(step) else step
            if not reply.get("again"):
                self.script.pop(0)
            return reply

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        model = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def send_json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def authorised(self) -> bool:
                model.hits.append((self.command, self.path))
                if model.api_key and self.headers.get("Authorization") != f"Bearer {model.api_key}":
                    self.send_json(401, {"error": {"message": "Incorrect API key provided"}})
                    return False
                return True

            def do_GET(self) -> None:
                if not self.authorised():
                    return
                if self.path.rstrip("/").endswith("/models"):
                    data = [{"id": m, "object": "model", "owned_by": "tests"} for m in model.models]
                    self.send_json(200, {"object": "list", "data": data})
                else:
                    self.send_json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.authorised():
                    return
                if not self.path.endswith("/chat/completions"):
                    self.send_json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                if body.get("model") not in model.models:
                    self.send_json(
                        404, {"error": {"message": f"model {body.get('model')} not found"}}
                    )
                    return
                reply = model.next_reply(body)
                if reply.get("delay"):  # a model's latency, outside the script's lock
                    model.released.wait(float(reply["delay"]))
                if reply.get("hang"):
                    model.released.wait()
                    return
                if "raw" in reply:
                    data = reply["raw"].encode()
                    self.send_response(reply["raw_status"])
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if "status" in reply:
                    self.send_json(reply["status"], {"error": {"message": reply["error"]}})
                    return
                self.send_json(200, completion(body, reply, len(model.requests)))

        return Handler


def completion(body: dict[str, Any], reply: Reply, n: int) -> dict[str, Any]:
    calls = [
        {"id": f"call_{n}_{i}", "type": "function", "function": {"name": name, "arguments": args}}
        for i, (name, args) in enumerate(reply.get("calls", []))
    ]
    message: dict[str, Any] = {"role": "assistant", "content": reply.get("content") or None}
    if calls:
        message["tool_calls"] = calls
    prompt_tokens = len(json.dumps(body.get("messages", []))) // 4
    return {
        "id": f"chatcmpl-{n}",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model"),
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": 20,
            "total_tokens": prompt_tokens + 20,
        },
    }
