"""Tool calls as text, for endpoints or models without native tool calling.

The model answers with its reasoning and one fenced JSON block naming a tool and its
arguments; results come back as user messages.
"""

from __future__ import annotations

import json
import re
from typing import Any

_BLOCK = re.compile(r"```(?:json)?\s*\n(.*?)\n\s*```", re.DOTALL)


def tools_prompt(specs: list[dict[str, Any]]) -> str:
    """Describe the tools and the reply format in words a model can follow."""
    lines = [
        "You act only through tools. In every reply, first say briefly why, then give exactly "
        "one fenced block like this:",
        "```json",
        '{"tool": "read_file", "arguments": {"path": "src/app.py"}}',
        "```",
        "The result comes back in the next message. Tools:",
    ]
    for spec in specs:
        fn = spec["function"]
        props = fn["parameters"].get("properties", {})
        required = set(fn["parameters"].get("required", []))
        args = ", ".join(f"{name}{'' if name in required else '?'}" for name in props)
        lines.append(f"- {fn['name']}({args}): {fn['description']}")
    return "\n".join(lines)


def parse_call(text: str) -> tuple[str, str, str] | None:
    """(prose, tool name, arguments JSON) from a reply, or None when it holds no call."""
    for match in _BLOCK.finditer(text):
        try:
            obj = json.loads(match.group(1))
        except ValueError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("tool") or obj.get("name"), str):
            name = obj.get("tool") or obj.get("name")
            args = obj.get("arguments", obj.get("args", {}))
            prose = (text[: match.start()] + text[match.end() :]).strip()
            return prose, str(name), json.dumps(args)
    return None


def result_message(tool: str, output: str) -> dict[str, str]:
    return {"role": "user", "content": f"Result of {tool}:\n{output}"}
