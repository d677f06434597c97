"""Run settings and where they come from.

Strongest first: command flags (or LSP settings), then the environment. Anything a
user must fix is reported as a `NexusError` whose message names the setting.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from nexus_ls.errors import NexusError
from nexus_ls.inputs import check_text
from nexus_ls.sandbox.settings import SandboxSettings

TOOL_MODES = ("auto", "native", "text")
MAX_SECONDS = 30 * 24 * 3600  # past this a timer cannot be set, and no run needs it


class NoEndpoint(NexusError):
    """Neither flags nor the environment name an endpoint; other sources may still."""


@dataclass
class ModelSettings:
    """How to reach the language model; `model=None` means ask the endpoint."""

    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None
    tool_mode: str = "auto"
    source: str = "default"
    guided: bool = False  # the harness drives the loop (for small models)
    gguf: str | None = None  # a local GGUF file served by the embedded llama.cpp server

    def public(self) -> dict[str, object]:
        """The settings as they may be journaled: never the key itself."""
        data = asdict(self)
        data["api_key"] = "set" if self.api_key else None
        return data


@dataclass
class Limits:
    """Bounds that end a run `failed` with the reason when hit."""

    max_steps: int = 40
    max_tokens: int = 400_000
    wall_time: float = 1800.0
    command_timeout: float = 120.0
    output_limit: int = 12_000


@dataclass
class RunSettings:
    model: ModelSettings = field(default_factory=ModelSettings)
    limits: Limits = field(default_factory=Limits)
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)


def resolve_model(
    *,
    model: str | None = None,
    base_url: str | None = None,
    tool_mode: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ModelSettings:
    """Pick the endpoint from flags, then the environment; fail with what to set."""
    env = os.environ if environ is None else environ
    for value, name in ((model, "--model"), (base_url, "--base-url"),
                        (env.get("NEXUS_MODEL"), "NEXUS_MODEL"),
                        (env.get("OPENAI_BASE_URL"), "OPENAI_BASE_URL")):  # fmt: skip
        if value:
            check_text(value, name)
    for value, name in ((base_url, "--base-url"), (env.get("OPENAI_BASE_URL"), "OPENAI_BASE_URL")):
        if value and not value.lower().startswith(("http://", "https://")):
            raise NexusError(f"{name} {value!r} is not an http:// or https:// URL")
    mode = tool_mode or env.get("NEXUS_TOOL_MODE") or "auto"
    if mode not in TOOL_MODES:
        raise NexusError(f"tool mode {mode!r} is not one of {', '.join(TOOL_MODES)}")
    api_key = env.get("OPENAI_API_KEY") or None
    chosen_model = model or env.get("NEXUS_MODEL") or None
    if base_url:
        return ModelSettings(base_url, api_key, chosen_model, mode, "flag")
    if env.get("OPENAI_BASE_URL"):
        return ModelSettings(env["OPENAI_BASE_URL"], api_key, chosen_model, mode, "environment")
    if api_key:
        return ModelSettings(None, api_key, chosen_model, mode, "environment")
    raise NoEndpoint(
        "no model endpoint configured: pass --base-url URL (any OpenAI-compatible server, "
        "e.g. http://localhost:11434/v1 for Ollama) or set OPENAI_BASE_URL, "
        "or set OPENAI_API_KEY for OpenAI; choose the model with --model or NEXUS_MODEL"
    )


def check_limits(limits: Limits) -> Limits:
    """Reject limits that would make a run meaningless, naming the flag."""
    for name in ("max_steps", "max_tokens", "wall_time", "command_timeout"):
        value = getattr(limits, name)
        if not math.isfinite(value) or value <= 0:  # nan would compare false: no limit at all
            raise NexusError(f"{name.replace('_', '-')} must be a positive number, not {value}")
        if name in ("wall_time", "command_timeout") and value > MAX_SECONDS:
            raise NexusError(f"{name.replace('_', '-')} must be at most {MAX_SECONDS} s (30 days)")
    return limits
