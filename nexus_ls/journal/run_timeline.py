"""A run told step by step, for `nexus show`: what the model thought, did, and got back.

The journal stores everything; a reader of a run wants the story. Each step shows the model's
words (its rationale), the tool call, an excerpt of the result and any diff, with long output
cut to a few lines so a twenty-step run still fits a screen or two. The run's final answer
is never cut: it is what the run was for (a review's list of edge cases, an explanation),
so the outcome shows it whole, line breaks and all, from the event's data (an event's
message is one line of at most 2,000 characters).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

from .progress import checklist, describe, headline, read_plan

RESULT_LINES = 8
DIFF_LINES = 40
LINE_CHARS = 160
INDENT = " " * 11


def timeline(events: list[dict]) -> str:
    """Every run in `events` (in order of first appearance), one block per run."""
    runs: dict[str | None, list[dict]] = {}
    for event in events:
        runs.setdefault(event.get("run"), []).append(event)
    if not runs:
        return "No events.\n"
    return "\n".join(_run_block(run, run_events) for run, run_events in runs.items())


def _run_block(run: str | None, events: list[dict]) -> str:
    events = sorted(events, key=lambda event: str(event.get("ts", "")))
    task = next((_data(e).get("task") for e in events if _data(e).get("task")), None)
    out = [f"Run {run}" + (f": {_clip(str(task))}" if task else "") if run else "Outside any run"]
    ended = any(e.get("category") in ("run", "error") and _data(e).get("status") for e in events)
    step: Any = None
    tokens = [0, 0]
    plan: tuple[Any, list] | None = None  # (step, steps) of the latest plan
    figures: dict | None = None  # the run's final metrics
    for event in events:
        data = _data(event)
        if event.get("category") == "metric":  # per-step figures stay in the journal
            figures = data if data.get("final") else figures
            continue
        steps = read_plan(data) if event.get("category") == "agent" else None
        if steps is not None:
            plan = (event.get("step"), steps)
        if event.get("category") == "model":
            tokens[0] += _int(data.get("prompt_tokens"))
            tokens[1] += _int(data.get("completion_tokens"))
        if event.get("step") is not None and event.get("step") != step:
            step = event.get("step")
            out.append(f"\nStep {step}  {str(event.get('ts', ''))[11:19]}")
        elif event.get("step") is None and event.get("category") == "run" and step is not None:
            step = None  # the run's own events after its steps: its outcome
            out.append("")
        render: Callable[[dict, dict], list[str]]
        if _is_finish(event, data):  # the answer: in full with the outcome, else here
            render = _render_finish if ended else _render_answer
        elif steps is not None:
            render = _render_plan
        else:
            render = _RENDERERS.get(str(event.get("category")), _render_other)
        out.extend("  " + line for line in render(event, data))
        args = data.get("arguments")
        if event.get("category") != "tool" and isinstance(args, dict) and args.get("reason"):
            out.append("  " + _field("reason", _clip(str(args["reason"]))))
    if plan is not None:
        out.append(f"\nPlan{f' (as of step {plan[0]})' if plan[0] else ''}:")
        out.extend("  " + line for line in checklist(plan[1]))
    if figures is not None:
        # Figures of another shape are left out: the journal still has them.
        with contextlib.suppress(KeyError, TypeError, AttributeError, ValueError):
            out.append(f"\nMetrics: {describe(figures)}")  # type: ignore[arg-type]
    if any(tokens):
        out.append(f"\nTokens: {tokens[0]} prompt, {tokens[1]} completion")
    return "\n".join(out) + "\n"


def _render_run(event: dict, data: dict) -> list[str]:
    lines = []
    if data.get("branch"):
        base = f" from {str(data['base'])[:12]}" if data.get("base") else ""
        lines.append(_field("branch", f"{data['branch']}{base}"))
    if data.get("status"):
        lines.extend(_whole("status", str(data["status"]), data.get("summary")))
    return lines or [_field("run", str(event.get("message", "")))]


def _is_finish(event: dict, data: dict) -> bool:
    """The agent's `step N: finish — ...` event, whose data holds the whole answer."""
    message = str(event.get("message", ""))
    return (
        event.get("category") == "agent"
        and isinstance(data.get("summary"), str)
        and message.startswith(f"step {event.get('step')}: finish — ")
    )


def _render_finish(event: dict, data: dict) -> list[str]:
    """The finish step as one line: the run's outcome below shows the answer whole."""
    lines = str(event.get("message", "")).splitlines() or [""]
    return [_field("agent", _clip(lines[0]))]


def _render_answer(event: dict, data: dict) -> list[str]:
    """The finish step of a run with no outcome (its host died first): the answer whole,
    when the message was made from it (a guided run's message is the harness's summary)."""
    head, _, shown = str(event.get("message", "")).partition(" — ")
    answer = str(data["summary"])
    if not " ".join(answer.split()).startswith(" ".join(shown.removesuffix("…").split())):
        return _render_other(event, data)
    return _whole("agent", head, answer, sep=" — ")


def _render_plan(event: dict, data: dict) -> list[str]:
    """A new plan, by its headline: the latest is shown whole after the steps."""
    return [_field("plan", headline(read_plan(data) or []).removeprefix("plan "))]


def _render_model(event: dict, data: dict) -> list[str]:
    text = str(data.get("text") or "").strip()
    return _block("thought", text) if text else []


def _render_tool(event: dict, data: dict) -> list[str]:
    args = data.get("arguments")
    args = args if isinstance(args, dict) else {}
    shown = ", ".join(f"{key}={_short(value)}" for key, value in args.items() if key != "reason")
    lines = [_field("tool", f"{data.get('tool', '?')}({shown})")]
    if args.get("reason"):
        lines.append(_field("reason", _clip(str(args["reason"]))))
    status = "ok" if data.get("ok", True) else "error"
    if data.get("duration_ms") is not None:
        status += f", {data['duration_ms']} ms"
    lines.extend(_block("result", str(data.get("result") or ""), status))
    return lines


def _render_edit(event: dict, data: dict) -> list[str]:
    if data.get("commit"):  # the step's commit; edit tools showed their diff already
        files = ", ".join(str(f) for f in data.get("files") or [])
        lines = [_field("commit", f"{str(data['commit'])[:12]}  {files}")]
        if data.get("tool") in ("write_file", "edit_file"):
            return lines
    elif data.get("ok") is False:
        return [
            _field("edit", f"{data.get('tool', 'edit')} {data.get('path', '')}".rstrip()),
            *_block("result", str(data.get("result") or ""), "error"),
        ]
    else:
        lines = [_field("edit", str(data.get("path", "?")))]
    diff = str(data.get("diff") or "")
    lines.extend(INDENT + "| " + line for line in _excerpt(diff, DIFF_LINES))
    return lines


def _render_command(event: dict, data: dict) -> list[str]:
    status = "timed out" if data.get("timed_out") else f"exit {data.get('exit_code', '?')}"
    if data.get("duration_ms") is not None:
        status += f", {data['duration_ms']} ms"
    head = _field("command", f"$ {_clip(str(data.get('command', '')))}")
    return [head, *_block("output", str(data.get("output") or ""), status)]


_CHECKS = {"finish": "  (NEXUS, at finish)", "base": "  (NEXUS, at the base)"}


def _render_test(event: dict, data: dict) -> list[str]:
    if "exit_code" not in data:  # a note on tests (a finish held for them), not a run
        return _render_other(event, data)
    counts = f"{data.get('passed', '?')} passed, {data.get('failed', '?')} failed"
    status = f"{counts}, exit {data.get('exit_code', '?')}"
    by = _CHECKS.get(str(data.get("check")), "")  # NEXUS's own runs, at a finish
    head = _field("tests", f"$ {_clip(str(data.get('command', '')))}{by}")
    return [head, *_block("output", str(data.get("output") or ""), status)]


def _render_error(event: dict, data: dict) -> list[str]:
    lines = [_field("error", str(event.get("message", "")))]
    if data.get("cause"):
        lines.extend(_block("cause", str(data["cause"])))
    return lines


def _render_other(event: dict, data: dict) -> list[str]:
    return [_field(str(event.get("category", "?")), str(event.get("message", "")))]


_RENDERERS: dict[str, Callable[[dict, dict], list[str]]] = {
    "run": _render_run,
    "model": _render_model,
    "tool": _render_tool,
    "edit": _render_edit,
    "command": _render_command,
    "test": _render_test,
    "error": _render_error,
}


def _field(label: str, text: str) -> str:
    return f"{label:<9}{text}"


def _whole(label: str, head: str, text: object, sep: str = ": ") -> list[str]:
    """`head`, then all of `text`: its first line beside `head`, every other line under it,
    none cut (tabs and line breaks kept)."""
    if not text:
        return [_field(label, head)]
    first, *rest = str(text).splitlines() or [""]
    return [_field(label, f"{head}{sep}{first}"), *(INDENT + "| " + line for line in rest)]


def _block(label: str, text: str, head: str = "") -> list[str]:
    """A labelled block: `head` on the label's line, then an excerpt of `text` under it."""
    body = _excerpt(text, RESULT_LINES)
    if not head:
        head, body = (body[0], body[1:]) if body else ("", [])
    return [_field(label, head), *(INDENT + "| " + line for line in body)]


def _excerpt(text: str, max_lines: int) -> list[str]:
    lines = text.rstrip("\n").splitlines()
    kept = [_clip(line) for line in lines[:max_lines]]
    if len(lines) > max_lines:
        kept.append(f"… {len(lines) - max_lines} more lines")
    return kept


def _clip(text: str, limit: int = LINE_CHARS) -> str:
    text = text.replace("\t", "    ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(value: Any, limit: int = 60) -> str:
    if isinstance(value, str):
        return json.dumps(_clip(value.replace("\n", "⏎"), limit), ensure_ascii=False)
    return _clip(json.dumps(value, ensure_ascii=False), limit)


def _data(event: dict) -> dict:
    """The event's data, with a tool call's own facts (under `details`) beside the loop's."""
    data = event.get("data")
    if not isinstance(data, dict):
        return {}
    details = data.get("details")
    return {**details, **data} if isinstance(details, dict) else data


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
