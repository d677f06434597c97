"""What a run is started with, as plain data: the model, the limits, the sandbox.

Where each value comes from is decided elsewhere: the model by `models/resolve.py`,
the sandbox by `sandbox/settings.py`, and the whole start (limits checked) by
`run_start.py`, which the command line and the language server share.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from nexus_ls.sandbox.settings import SandboxSettings

TOOL_MODES = ("auto", "native", "text")  # how tools are called: ModelSettings.tool_mode


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
    context_tokens: int = 2000  # the starting context's share of the first prompt (0: none)
    context_window: int | None = None  # the model's, in tokens (None: ask the endpoint)
    memory_tokens: int = 400  # lessons from the workspace's memory, within the context (0: none)
    # A run tree (a run and the sub-agents it spawns) shares the limits above; these
    # stop spawning loops: how deep, how many in all, how many at once.
    max_depth: int = 2
    max_agents: int = 8
    parallel_agents: int = 2
    # Guided mode: candidates verified per step (sample, then verify) before it gives up.
    candidates: int = 8


@dataclass
class RunSettings:
    model: ModelSettings = field(default_factory=ModelSettings)
    limits: Limits = field(default_factory=Limits)
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
