"""The language model behind an agent, through the `openai` client.

One place turns the loop's neutral history into the endpoint's messages (native
tool calls or the text fallback), retries what is worth retrying, and turns every
other endpoint problem into a one-line `ModelError` that says what to set.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import openai

from nexus_ls.agent import textmode
from nexus_ls.config import ModelSettings

Notify = Callable[[str, str, dict[str, Any]], None]  # level, message, data
T = TypeVar("T")


class ModelError(Exception):
    """The endpoint cannot serve this run; the message says what to set."""


class Refused(ModelError):
    """The endpoint answered 400/422: the request's shape, not the endpoint, is the problem."""


class Interrupted(ModelError):
    """The run was cancelled, or ran out of time, while a model call was in flight."""


class NotJSON(Exception):
    """A 200 answer whose body is not JSON: a proxy's error page, a server mid-restart."""


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass
class Turn:
    text: str  # the model's own words: the rationale of its actions
    raw: str  # the reply as sent, kept in the history
    calls: list[ToolCall] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: int = 0


@dataclass(frozen=True)
class Sampling:
    """How one answer is drawn: greedy (temperature 0) is repeatable, so a retry needs a
    temperature and a seed of its own to be a different candidate."""

    temperature: float = 0.0
    seed: int | None = None

    def describe(self) -> str:
        if self.temperature == 0:
            return "greedy"
        return f"temperature {self.temperature:g}, seed {self.seed}"


GREEDY = Sampling()


class Model(Protocol):
    """What the loops need of a language model: `ChatModel` over HTTP, or a scripted one
    in-process for tests. `deadline` is a `time.monotonic()` value no call may pass."""

    mode: str  # "native" or "text": how tool calls travel
    deadline: float

    def resolve_name(self) -> str: ...

    def complete(self, history: list[Any]) -> Turn: ...

    def complete_json(
        self,
        messages: list[dict[str, str]],
        schema: dict[str, Any],
        max_tokens: int = 512,
        sampling: Sampling = GREEDY,
    ) -> tuple[Any, Turn]: ...

    def context_window(self) -> int | None: ...


_RETRYABLE = (
    openai.RateLimitError,
    openai.InternalServerError,
    openai.APITimeoutError,
    NotJSON,
)
# How often a call in flight looks at the cancel flag and the clock.
POLL = 0.05


class ChatModel:
    """Chat completions with tools; switches to the text fallback when tools are refused.

    Every call is bounded by `deadline` (a `time.monotonic()` value; the run's wall time),
    and a cancel interrupts a call in flight: no limit waits on the endpoint.
    """

    def __init__(
        self,
        settings: ModelSettings,
        tools: list[dict[str, Any]],
        *,
        notify: Notify,
        cancel: threading.Event | None = None,
        timeout: float = 300.0,
        retries: int = 4,
        retry_delay: float = 0.5,
    ) -> None:
        self.settings = settings
        self.tools = tools
        self.mode = "text" if settings.tool_mode == "text" else "native"
        self.notify = notify
        self.cancel = cancel or threading.Event()
        self.retries = retries
        self.retry_delay = retry_delay
        self.timeout = timeout
        self.deadline = math.inf
        self.url = settings.base_url or "https://api.openai.com/v1"
        self.client = openai.OpenAI(
            base_url=settings.base_url or None,
            api_key=settings.api_key or "not-needed",
            max_retries=0,
            timeout=timeout,
        )
        self.name = settings.model or ""
        self.json_format = "json_object"

    def resolve_name(self) -> str:
        """The model to use: the setting, else the first the endpoint lists."""
        if not self.name:
            available = self._available()
            if not available:
                raise ModelError(
                    f"the endpoint at {self.url} lists no models; set --model or NEXUS_MODEL"
                )
            self.name = available[0]
            self.notify("INFO", f"model not set; using {self.name}, the first {self.url} lists", {})
        return self.name

    def context_window(self) -> int | None:
        """The model's context in tokens, where the endpoint's model list says it (vLLM's
        `max_model_len`, llama.cpp's `meta.n_ctx_train`, others' `context_length`)."""
        try:
            listed = self._call(lambda: self.client.models.list(timeout=self.call_timeout()))
        except (openai.OpenAIError, ModelError, NotJSON):
            return None
        for item in listed:
            if item.id != self.name:
                continue
            extra = {**(item.model_extra or {}), **((item.model_extra or {}).get("meta") or {})}
            for key in ("max_model_len", "context_length", "context_window", "n_ctx_train"):
                value = extra.get(key)
                if isinstance(value, int) and value > 0:
                    return value
        return None

    def complete(self, history: list[Any]) -> Turn:
        """One turn of the conversation, with native or text tool calls."""
        return self._with_retries(lambda: self._create(history), tool_fallback=True)

    def complete_json(
        self,
        messages: list[dict[str, str]],
        schema: dict[str, Any],
        max_tokens: int = 512,
        sampling: Sampling = GREEDY,
    ) -> tuple[Any, Turn]:
        """One grammar-constrained answer: JSON that fits `schema` (llama.cpp and vLLM honour
        `response_format` with a schema), sampled as `sampling` says. Returns (value, turn);
        value is None when the endpoint ignored the schema and sent something not JSON."""
        try:
            turn = self._with_retries(
                lambda: self._create_json(messages, schema, max_tokens, sampling),
                tool_fallback=False,
            )
        except Refused as exc:
            if self.json_format != "json_object":
                raise
            # llama.cpp takes a schema inside json_object; OpenAI-style APIs want json_schema.
            self.json_format = "json_schema"
            self.notify("WARNING", "endpoint refused json_object with a schema; using json_schema",
                        {"error": str(exc)})  # fmt: skip
            turn = self._with_retries(
                lambda: self._create_json(messages, schema, max_tokens, sampling),
                tool_fallback=False,
            )
        try:
            return json.loads(turn.raw), turn
        except ValueError:
            return None, turn

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def _call(self, create: Callable[[], T]) -> T:
        """`create` in a worker thread, so that a cancel or the deadline ends the wait even
        when the endpoint never answers; the abandoned request dies with the process."""
        box: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                box["value"] = create()
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=work, daemon=True, name="nexus-model-call").start()
        while not done.wait(POLL):
            if self.cancel.is_set():
                raise Interrupted("cancelled while waiting for the model")
            if self.time_left() <= 0:
                raise Interrupted(f"time ran out while waiting for the model at {self.url}")
        if "error" in box:
            error = box["error"]
            if isinstance(error, ValueError) and not isinstance(error, openai.OpenAIError):
                raise NotJSON(f"the endpoint at {self.url} answered with a body that is not JSON")
            raise error
        value: T = box["value"]
        return value

    def call_timeout(self) -> float:
        """The client's timeout for one request: never past the run's deadline."""
        left = self.time_left()
        if self.cancel.is_set():
            raise Interrupted("cancelled while waiting for the model")
        if left <= 0:
            raise Interrupted(f"time ran out before the model at {self.url} could be asked")
        return max(0.1, min(self.timeout, left))

    def _with_retries(self, create: Callable[[], Turn], tool_fallback: bool) -> Turn:
        attempt = 0
        while True:
            try:
                return self._call(create)
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                if tool_fallback and self.mode == "native" and self.settings.tool_mode == "auto":
                    self.mode = "text"
                    self.notify(
                        "WARNING",
                        "endpoint refused native tool calls; using text tool calls",
                        {"error": _short(exc)},
                    )
                    continue
                raise Refused(
                    f"the endpoint at {self.url} refused the request: {_short(exc)}"
                ) from exc
            except (*_RETRYABLE, openai.APIConnectionError) as exc:
                limit = self.retries if isinstance(exc, _RETRYABLE) else min(self.retries, 2)
                if attempt >= limit:
                    raise ModelError(_describe(exc, self.url, attempt)) from exc
                delay = self.retry_delay * 2**attempt
                if delay >= self.time_left():
                    raise ModelError(_describe(exc, self.url, attempt)) from exc
                attempt += 1
                self.notify(
                    "WARNING",
                    f"model call failed ({_short(exc)}); retry {attempt} in {delay:.1f}s",
                    {"attempt": attempt, "delay_s": delay},
                )
                if self.cancel.wait(delay):
                    raise ModelError("cancelled while waiting to retry the model") from exc
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                raise self._key_error(exc) from exc
            except openai.NotFoundError as exc:
                raise ModelError(self._not_found()) from exc
            except openai.APIStatusError as exc:
                raise ModelError(
                    f"the endpoint at {self.url} answered HTTP {exc.status_code}: {_short(exc)}"
                ) from exc

    def _create_json(
        self,
        messages: list[dict[str, str]],
        schema: dict[str, Any],
        max_tokens: int,
        sampling: Sampling,
    ) -> Turn:
        started = time.monotonic()
        kwargs: dict[str, Any] = {
            "model": self.name,
            "messages": sendable(messages),
            "response_format": (
                {"type": "json_object", "schema": schema}
                if self.json_format == "json_object"
                else {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
            ),
            "temperature": sampling.temperature,
            "max_tokens": max_tokens,
        }
        if sampling.seed is not None:
            kwargs["seed"] = sampling.seed
        response = self.client.chat.completions.create(**kwargs, timeout=self.call_timeout())
        return self._turn(response, started, parse_calls=False)

    def _create(self, history: list[dict[str, Any]]) -> Turn:
        kwargs: dict[str, Any] = {"model": self.name, "messages": sendable(self._render(history))}
        if self.mode == "native":
            kwargs["tools"] = self.tools
        started = time.monotonic()
        response = self.client.chat.completions.create(**kwargs, timeout=self.call_timeout())
        return self._turn(response, started, parse_calls=True)

    def _turn(self, response: Any, started: float, parse_calls: bool) -> Turn:
        latency = int((time.monotonic() - started) * 1000)
        if not response.choices:
            raise ModelError(f"the endpoint at {self.url} answered with no choices")
        message = response.choices[0].message
        raw = message.content or ""
        calls = [
            ToolCall(c.id or f"call_{i}", c.function.name, c.function.arguments or "{}")
            for i, c in enumerate(getattr(message, "tool_calls", None) or [])
            if getattr(c, "function", None) is not None
        ]
        text = raw
        if parse_calls and not calls:
            parsed = textmode.parse_call(raw)
            if parsed:
                text, name, args = parsed
                calls = [ToolCall(f"call_{int(started * 1000) % 10**8}", name, args)]
        usage = response.usage
        return Turn(
            text=text.strip(),
            raw=raw,
            calls=calls,
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            latency_ms=latency,
        )

    def _render(self, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Neutral history -> the messages this endpoint and mode expect."""
        out: list[dict[str, Any]] = []
        for entry in history:
            role = entry["role"]
            if role == "system" and self.mode == "text":
                out.append(
                    {
                        "role": "system",
                        "content": entry["content"] + "\n\n" + textmode.tools_prompt(self.tools),
                    }
                )
            elif role == "assistant":
                message: dict[str, Any] = {"role": "assistant", "content": entry["content"] or ""}
                if self.mode == "native" and entry.get("calls"):
                    message["tool_calls"] = [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments},
                        }
                        for c in entry["calls"]
                    ]
                out.append(message)
            elif role == "tool":
                call = entry["call"]
                if self.mode == "native":
                    out.append(
                        {"role": "tool", "tool_call_id": call.id, "content": entry["content"]}
                    )
                else:
                    out.append(textmode.result_message(call.name, entry["content"]))
            else:
                out.append({"role": role, "content": entry["content"]})
        return out

    def _available(self) -> list[str]:
        try:
            listed = self._call(lambda: self.client.models.list(timeout=self.call_timeout()))
            return [m.id for m in listed]
        except openai.APIConnectionError as exc:
            raise ModelError(_describe(exc, self.url, 0)) from exc
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise self._key_error(exc) from exc
        except openai.APIStatusError as exc:
            raise ModelError(
                f"the endpoint at {self.url} could not list models (HTTP {exc.status_code}); "
                "set --model or NEXUS_MODEL"
            ) from exc

    def _key_error(self, exc: openai.APIStatusError) -> ModelError:
        return ModelError(
            f"the endpoint at {self.url} rejected the API key (HTTP {exc.status_code}); "
            "set OPENAI_API_KEY to a key it accepts"
        )

    def _not_found(self) -> str:
        try:
            available = self._available()
        except ModelError:
            available = []
        if available and self.name not in available:
            shown = ", ".join(available[:8])
            return (
                f"model {self.name!r} is not served at {self.url} (it has: {shown}); "
                "set --model or NEXUS_MODEL"
            )
        return (
            f"HTTP 404 from {self.url}: check the base URL "
            "(OpenAI-compatible servers usually end in /v1)"
        )


def _short(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        msg = err.get("message") if isinstance(err, dict) else err
        if msg:
            return str(msg).splitlines()[0][:300]
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]


def _describe(exc: Exception, url: str, attempts: int) -> str:
    if isinstance(exc, NotJSON):
        return f"{exc} (after {attempts + 1} tries); check that it is an OpenAI-compatible API"
    if isinstance(exc, openai.APITimeoutError):
        return (
            f"the model at {url} did not answer in time after {attempts + 1} tries; "
            "check the server or use a faster model"
        )
    if isinstance(exc, openai.APIConnectionError):
        return (
            f"cannot reach the model endpoint at {url}; start the server "
            "or set --base-url / OPENAI_BASE_URL to one that is running"
        )
    status = getattr(exc, "status_code", "?")
    return (
        f"the endpoint at {url} kept failing (HTTP {status}: {_short(exc)}) "
        f"after {attempts + 1} tries"
    )


def tool_arguments(call: ToolCall) -> Any:
    """The call's arguments for the journal: parsed when they are JSON, else the raw text."""
    try:
        return json.loads(call.arguments)
    except ValueError:
        return call.arguments


def sendable(value: Any) -> Any:
    """`value` with lone surrogates (a model's own text, bytes that were not UTF-8) shown as
    escapes: the request body must be UTF-8, and one such character would fail the run."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {key: sendable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [sendable(item) for item in value]
    return value
