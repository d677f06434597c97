"""The `nexus` settings an editor sends, as typed values with defaults.

One pydantic model (through `validation`, as tool arguments are) declares each setting's
type and range. Bad values are reported by key (so the user can find them) and replaced
by defaults, never fatal: an editor with a typo in its settings still gets a working
server.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from nexus_ls.config import Limits
from nexus_ls.validation import Invalid, Strict, validate


class ServerSettings(Strict):
    # The editor-facing names are camelCase.
    model: str | None = None
    baseUrl: str | None = None  # noqa: N815
    localModel: str | None = None  # noqa: N815
    toolMode: Literal["auto", "native", "text"] | None = None  # noqa: N815
    guided: bool | None = None
    maxSteps: int = Field(default=Limits.max_steps, gt=0)  # noqa: N815
    maxTokens: int = Field(default=Limits.max_tokens, gt=0)  # noqa: N815
    wallTime: float = Field(default=Limits.wall_time, gt=0)  # noqa: N815
    commandTimeout: float = Field(default=Limits.command_timeout, gt=0)  # noqa: N815
    contextTokens: int = Field(default=Limits.context_tokens, ge=0)  # noqa: N815
    contextWindow: int | None = Field(default=None, gt=0)  # noqa: N815
    memoryTokens: int = Field(default=Limits.memory_tokens, ge=0)  # noqa: N815
    maxDepth: int = Field(default=Limits.max_depth, ge=0)  # noqa: N815
    maxAgents: int = Field(default=Limits.max_agents, ge=0)  # noqa: N815
    parallelAgents: int = Field(default=Limits.parallel_agents, gt=0)  # noqa: N815
    candidates: int = Field(default=Limits.candidates, gt=0)
    # auto, bwrap, landlock or off (default: the policy file's)
    sandbox: Literal["auto", "bwrap", "landlock", "off"] | None = None
    network: bool | None = None  # the run's commands get the network

    def limits(self) -> Limits:
        return Limits(
            max_steps=self.maxSteps,
            max_tokens=self.maxTokens,
            wall_time=self.wallTime,
            command_timeout=self.commandTimeout,
            context_tokens=self.contextTokens,
            context_window=self.contextWindow,
            memory_tokens=self.memoryTokens,
            max_depth=self.maxDepth,
            max_agents=self.maxAgents,
            parallel_agents=self.parallelAgents,
            candidates=self.candidates,
        )


def structure(raw: Any) -> tuple[ServerSettings, list[str]]:
    """Settings from the editor's `nexus` object, and one problem line per bad key."""
    problems: list[str] = []
    if raw is None:
        return ServerSettings(), problems
    if not isinstance(raw, dict):
        return ServerSettings(), [f"nexus settings should be an object, not {type(raw).__name__}"]
    known = sorted(ServerSettings.model_fields)
    good: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in ServerSettings.model_fields:
            problems.append(f"nexus.{key} is not a setting (known: {', '.join(known)})")
            continue
        try:
            validate(ServerSettings, {key: value}, noun="setting")
        except Invalid:
            default = ServerSettings.model_fields[key].default
            shown = "the default" if default is None else repr(default)
            problems.append(f"nexus.{key} = {value!r} is not valid; using {shown}")
            continue
        if value is not None:
            good[key] = value
    return validate(ServerSettings, good, noun="setting"), problems


def section(options: Any) -> Any:
    """The `nexus` object from initializationOptions, given either wrapped or bare."""
    if isinstance(options, dict) and isinstance(options.get("nexus"), dict):
        return options["nexus"]
    return options
