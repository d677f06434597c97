"""The conversation as the loop keeps it, and how it is kept from growing without bound.

Two measures, both journaled by the loop. Old tool observations are shortened to their
one-line outcome (the last few turns stay whole; `read_output` still shows any of them),
and old tool-call arguments lose their long strings (a written file's content). When the
prompt nears the model's context window, the turns before the last few are folded into
one note listing what each step did.
"""

from __future__ import annotations

import json
from typing import Literal, TypedDict

from typing_extensions import NotRequired

from nexus_ls.agent.model import ToolCall
from nexus_ls.tools.kept import where

KEEP_TURNS = 3  # turns whose observations stay whole
LONG_ARGUMENT = 400  # characters of one argument kept in an old call


class Entry(TypedDict):
    """One message of the neutral history; `agent.model` renders it for the endpoint."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str
    step: NotRequired[int]  # the turn it belongs to (assistant and tool entries)
    calls: NotRequired[list[ToolCall]]  # an assistant's tool calls
    call: NotRequired[ToolCall]  # the call a tool entry answers
    index: NotRequired[int]  # its place among the turn's calls (1-based)
    short: NotRequired[str]  # the one line that stands for it once it is old
    shortened: NotRequired[bool]
    folded: NotRequired[bool]  # the note that stands for earlier turns


def tokens(history: list[Entry]) -> int:
    """A rough size of the prompt (four characters a token), for when no count is known."""
    size = 0
    for entry in history:
        size += len(entry["content"]) + 16
        size += sum(len(c.arguments) + len(c.name) for c in entry.get("calls", ()))
    return size // 4


def shorten(history: list[Entry], current_step: int, keep: int = KEEP_TURNS) -> int:
    """Shorten entries of turns before the last `keep`; how many were shortened now."""
    count = 0
    for entry in history:
        step = entry.get("step")
        if step is None or step > current_step - keep or entry.get("shortened"):
            continue
        if entry["role"] == "tool" and "short" in entry:
            line = entry["short"]
            entry["content"] = (
                f"{line} [shortened; read_output {where(step, entry.get('index', 1))} "
                "shows it whole]"
            )
        elif entry["role"] == "assistant":
            entry["calls"] = [_brief_call(call) for call in entry.get("calls", ())]
            if len(entry["content"]) > 4 * LONG_ARGUMENT:  # a text-mode call with a file in it
                entry["content"] = entry["content"][:LONG_ARGUMENT] + " [... shortened]"
        entry["shortened"] = True
        count += 1
    return count


def fold(history: list[Entry], current_step: int, keep: int = KEEP_TURNS) -> int:
    """Replace the turns before the last `keep` by one note; how many entries were folded.
    The system message and the task (the first two entries) always stay."""
    head, rest = history[:2], history[2:]
    old = [e for e in rest if e.get("step", current_step) <= current_step - keep]
    if len([e for e in old if not e.get("folded")]) < 2:
        return 0
    lines: list[str] = []
    for entry in old:
        if entry.get("folded"):  # an earlier note: its lines carry over
            lines.extend(entry["content"].splitlines()[1:])
        elif entry["role"] == "tool":
            name = entry["call"].name if "call" in entry else "?"
            lines.append(f"- step {entry.get('step')}: {name}: {entry.get('short', '')}")
    note: Entry = {
        "role": "user",
        "step": 0,
        "folded": True,
        "content": "Earlier steps, summarised to keep the conversation within the model's "
        "context (read_output shows any step's output whole):\n" + "\n".join(lines),
    }
    folded = {id(e) for e in old}
    kept = [e for e in rest if id(e) not in folded]
    history[:] = [*head, note, *kept]
    return len(old)


def _brief_call(call: ToolCall) -> ToolCall:
    try:
        arguments = json.loads(call.arguments)
    except ValueError:
        return call if len(call.arguments) <= LONG_ARGUMENT else ToolCall(call.id, call.name, "{}")
    if not isinstance(arguments, dict):
        return call
    brief = {
        key: f"<{len(value):,} characters, shortened>"
        if isinstance(value, str) and len(value) > LONG_ARGUMENT
        else value
        for key, value in arguments.items()
    }
    return ToolCall(call.id, call.name, json.dumps(brief))
