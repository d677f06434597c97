"""What a guided run asks the model, and the JSON schemas that constrain its answers.

Each prompt carries only what one step needs (the task, one file, the last failing
output), never the run's history: small models lose the thread in long contexts. Only
system and user messages with plain string content are sent, because some local
servers drop `tool` messages and reject assistant messages without content.
"""

from __future__ import annotations

import html
import re
from typing import Any

from nexus_ls.validation import fits as fits_schema

SYSTEM = (
    "You help a tool that does the work in a software project. Answer with one JSON object "
    "exactly in the requested form, and nothing else."
)
SAME_ANSWER = (
    "Note: you gave exactly the same answer last time, and it did not work. "
    "Give a different answer."
)
NOT_JSON = "Note: your last answer was not the JSON object asked for. Answer with that JSON only."
OUTPUT_CHARS = 2500
FILE_CHARS = 6000
_FAILURE = re.compile(r"\s*(>|E\s|FAILED|ERROR)|.*(Error|Exception|panic:|--- FAIL)")


def messages(prompt: str, note: str = "") -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"{prompt}\n\n{note}".strip()},
    ]


def tail(text: str, limit: int = OUTPUT_CHARS) -> str:
    """The end of a tool's output, where runners and tracebacks put what matters."""
    return text if len(text) <= limit else "[...]\n" + text[-limit:]


def failures(output: str, limit: int = OUTPUT_CHARS) -> str:
    """The lines of a test run that say what failed, else its end: short prompts run faster
    on a CPU and distract a small model less."""
    keep = [line for line in output.splitlines() if _FAILURE.match(line)]
    return tail("\n".join(keep) if keep else output, limit)


def task_text(task: str, context: str) -> str:
    return f"Task: {task}" + (
        f"\n\nCode the task is about:\n{context[:FILE_CHARS]}" if context else ""
    )


def create_prompt(task: str, context: str, path: str, runs: bool, last: str = "") -> str:
    check = f" It will be run with `python3 {path}` and must exit without errors." if runs else ""
    return (
        f"{task_text(task, context)}\n\nWrite the complete content of the file {path}.{check}"
        f'{last}\n\nPut the whole text of {path} in "content".'
    )


def create_retry(path: str, content: str, output: str) -> str:
    return (
        f"\n\nYour last version of {path} was:\n{content[:FILE_CHARS]}\n\nRunning it failed:\n"
        f"{tail(output)}\n\nWrite a corrected version."
    )


def fix_prompt(task: str, path: str, first: int, lines: list[str], output: str, tried: str) -> str:
    shown = "\n".join(lines)[:FILE_CHARS]
    where = f" (lines {first}-{first + len(lines) - 1})" if first > 1 else ""
    return (
        f"Task: {task}\n\nThe tests fail:\n{failures(output)}\n\n"
        f"This is {path}{where}:\n{shown}\n\n"
        f"Pick the one line of {path} that is wrong and write the corrected line.{tried}\n\n"
        'Give the wrong line in "line", copied exactly, and the corrected line in "new".'
    )


def fix_tried(tried: list[tuple[str, str]]) -> str:
    """What the model is told of the fixes tried so far (the file is back each time)."""
    if not tried:
        return ""
    listed = "\n".join(f"- `{old.strip()}` -> `{new.strip()}`" for old, new in tried[-6:])
    return (
        f"\n\nThese changes were tried and the tests still failed (the file is back as shown):"
        f"\n{listed}\nGive a different fix."
    )


def rank_prompt(task: str, path: str, output: str, options: list[str]) -> str:
    listed = "\n".join(f"{n}: {option}" for n, option in enumerate(options, 1))
    return (
        f"Task: {task}\n\nThe tests fail:\n{failures(output, 1500)}\n\n"
        f"Possible one-line fixes of {path}:\n{listed}\n\n"
        'Which one fixes the failing test? Give its number in "choice".'
    )


def append_prompt(task: str, path: str, text: str) -> str:
    return (
        f"Task: {task}\n\nThis is {path}:\n{text[-FILE_CHARS:]}\n\n"
        f'Write the text to add at the end of {path}, in "text".'
    )


def pick_prompt(task: str, output: str) -> str:
    return (
        f"Task: {task}\n\nThe tests fail:\n{failures(output)}\n\n"
        'Which file holds the bug? Give its path in "path".'
    )


def explain_prompt(task: str, where: str, text: str) -> str:
    return (
        f"Task: {task}\n\n{where}:\n{text[:FILE_CHARS]}\n\n"
        'Answer the task in a few plain sentences, in "explanation".'
    )


def generic_prompt(task: str, context: str, files: list[str], changed: list[str], last: str) -> str:
    listed = ", ".join(files[:80]) + (" ..." if len(files) > 80 else "")
    parts = [task_text(task, context), f"Files in the project: {listed or '(none)'}"]
    if changed:
        parts.append(f"Files changed so far: {', '.join(changed)}")
    if last:
        parts.append(f"Result of the last step:\n{tail(last)}")
    parts.append(
        'Choose the next step: a "tool" and its "arguments". '
        "Use finish with a summary when the task is done."
    )
    return "\n\n".join(parts)


def text_schema(key: str) -> dict[str, Any]:
    """An object with one non-empty string, e.g. {"content": "..."}."""
    return {
        "type": "object",
        "properties": {key: {"type": "string", "minLength": 1}},
        "required": [key],
        "additionalProperties": False,
    }


def grammar_safe(choices: list[str]) -> list[str]:
    """The choices llama.cpp can put in a grammar.

    llama-cpp-python 0.3.36 turns an enum value holding a double quote or a backslash into
    a grammar it cannot parse, and the server process dies on that request; such values
    are never offered (a bug on such a line cannot be picked in guided mode)."""
    return [c for c in choices if '"' not in c and "\\" not in c]


def enum_of(choices: list[str]) -> dict[str, Any]:
    safe = grammar_safe(choices)
    return {"type": "string", "enum": safe} if safe else {"type": "string"}


def choice_schema(key: str, choices: list[str], **more: dict[str, Any]) -> dict[str, Any]:
    """An object whose `key` must be one of `choices` (a tiny model cannot invent a line)."""
    return {
        "type": "object",
        "properties": {key: enum_of(choices), **more},
        "required": [key, *more],
        "additionalProperties": False,
    }


def fix_schema(lines: list[str]) -> dict[str, Any]:
    return choice_schema("line", lines, new={"type": "string"})


def tools_schema(specs: list[dict[str, Any]], paths: list[str]) -> dict[str, Any]:
    """One branch per tool, with that tool's own argument schema (and known paths to read)."""
    branches = []
    for spec in specs:
        fn = spec["function"]
        props = {
            k: {key: v for key, v in p.items() if key != "description"}
            for k, p in fn["parameters"]["properties"].items()
            if k != "reason"
        }
        if fn["name"] in ("read_file", "edit_file") and paths:
            props["path"] = enum_of(paths)
        arguments = {
            "type": "object",
            "properties": props,
            "required": fn["parameters"].get("required", []),
            "additionalProperties": False,
        }
        branches.append(
            {
                "type": "object",
                "properties": {
                    "tool": {"type": "string", "enum": [fn["name"]]},
                    "arguments": arguments,
                },
                "required": ["tool", "arguments"],
                "additionalProperties": False,
            }
        )
    return {"oneOf": branches}


def fits(value: Any, schema: dict[str, Any]) -> bool:
    """Whether an answer fits the schema it was asked with: an endpoint may ignore it."""
    return fits_schema(value, schema)


def unescape(value: Any) -> Any:
    """Undo HTML escaping a chat template may have taught the model (`&#34;` for a quote)."""
    if isinstance(value, str):
        return html.unescape(value) if "&#34;" in value or "&#39;" in value else value
    if isinstance(value, dict):
        return {k: unescape(v) for k, v in value.items()}
    return value
