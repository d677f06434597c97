"""The `nexus` settings an editor sends, as typed values with defaults.

Bad values are reported by key (so the user can find them) and replaced by defaults,
never fatal: an editor with a typo in its settings still gets a working server.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from nexus_ls.config import TOOL_MODES, Limits
from nexus_ls.sandbox.settings import MODES


@dataclass
class ServerSettings:
    model: str | None = None
    baseUrl: str | None = None  # noqa: N815 - the editor-facing names are camelCase
    localModel: str | None = None  # noqa: N815
    toolMode: str | None = None  # noqa: N815
    guided: bool | None = None
    maxSteps: int = Limits.max_steps  # noqa: N815
    maxTokens: int = Limits.max_tokens  # noqa: N815
    wallTime: float = Limits.wall_time  # noqa: N815
    commandTimeout: float = Limits.command_timeout  # noqa: N815
    sandbox: str | None = None  # auto, bwrap, landlock or off (default: the policy file's)
    network: bool | None = None  # the run's commands get the network

    def limits(self) -> Limits:
        return Limits(
            max_steps=self.maxSteps,
            max_tokens=self.maxTokens,
            wall_time=self.wallTime,
            command_timeout=self.commandTimeout,
        )


_TYPES: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "baseUrl": (str,),
    "localModel": (str,),
    "toolMode": (str,),
    "guided": (bool,),
    "maxSteps": (int,),
    "maxTokens": (int,),
    "wallTime": (int, float),
    "commandTimeout": (int, float),
    "sandbox": (str,),
    "network": (bool,),
}


def structure(raw: Any) -> tuple[ServerSettings, list[str]]:
    """Settings from the editor's `nexus` object, and one problem line per bad key."""
    settings, problems = ServerSettings(), list[str]()
    if raw is None:
        return settings, problems
    if not isinstance(raw, dict):
        return settings, [f"nexus settings should be an object, not {type(raw).__name__}"]
    known = {f.name for f in fields(ServerSettings)}
    for key, value in raw.items():
        if key not in known:
            problems.append(f"nexus.{key} is not a setting (known: {', '.join(sorted(known))})")
            continue
        if value is None:
            continue
        types = _TYPES[key]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if ok and key in ("maxSteps", "maxTokens", "wallTime", "commandTimeout") and value <= 0:
            ok = False
        if ok and key == "toolMode" and value not in TOOL_MODES:
            ok = False
        if ok and key == "sandbox" and value not in MODES:
            ok = False
        if not ok:
            default = getattr(ServerSettings, key)
            shown = "the default" if default is None else repr(default)
            problems.append(f"nexus.{key} = {value!r} is not valid; using {shown}")
            continue
        setattr(settings, key, float(value) if float in types else value)
    return settings, problems


def section(options: Any) -> Any:
    """The `nexus` object from initializationOptions, given either wrapped or bare."""
    if isinstance(options, dict) and isinstance(options.get("nexus"), dict):
        return options["nexus"]
    return options
