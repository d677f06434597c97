"""What the model is told at the start of a run."""

from __future__ import annotations

from typing import Any

SYSTEM = """You are a NEXUS agent: a software engineer working in a git worktree of the user's \
project. Your tools really act: they read and change files and run commands in that worktree \
(never outside it). Every step that changes files becomes a commit, and your words before a tool \
call are recorded as the reason for it, so say briefly why before each action.

Work like a careful engineer: look before you change, make the smallest change that does the \
task, run the tests or the program to check your work, and read tool results: they are the \
truth. When the task is done (or cannot be done), call `finish` with a summary of what you \
did (for a question, your whole answer) and set `success` to false if you could not do it. Paths \
are relative to the project root.

Each of your answers is one step, however many tools it calls: call several independent tools \
in one answer (reads, searches) to save steps. After each step you see what is left of your \
budget (steps, tokens, time, and how many of your calls failed); plan to finish within it. For \
a task of several steps, write your plan with `update_plan` and keep it current as you go: the \
user watches it, and you see it after every step. Long outputs are cut in the middle and \
older ones shortened; the note there says how `read_output` shows them whole."""

REPEAT_WARNING = (
    "You have made the same failing call {count} times in a row. It will not work as it is: "
    "read the error, look at the files again, and try something different."
)

NO_TOOL_CALL = "Please act through a tool. When the task is done, call `finish` with a summary."


def notes_message(notes: list[dict[str, Any]]) -> str:
    """The host's notes since the last turn, each under a header saying who it is from,
    its text quoted line by line (`> `), so no text can pass for another header."""
    parts = []
    for note in notes:
        sender = note.get("from")
        head = f"[{note.get('kind', 'note')}" + (f" from {sender}" if sender else "") + "]"
        body = str(note.get("text", "")).strip().splitlines() or [""]
        parts.append("\n".join([head, *(f"> {line}" for line in body)]))
    return "\n\n".join(parts)


def task_message(task: str, context: str = "", starting: str = "") -> str:
    """The user's task, with the selected code or file when the editor sent some, after
    what the run knows of the project at its start."""
    parts = [f"About the project:\n{starting}"] if starting else []
    parts.append(f"Task: {task}")
    if context:
        parts.append(f"Context:\n{context}")
    return "\n\n".join(parts)
