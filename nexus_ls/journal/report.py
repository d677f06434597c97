"""The journal for people: terminal lines, exports (JSON lines, Markdown, HTML) and timelines.

Exports are self-contained so they can be attached to an issue or a review: the HTML page
carries its own style and no scripts, and every value from an event is escaped, since events
hold model output and command output that may contain markup.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from .lines import encode_line
from .printable import one_line, printable

__all__ = ["FORMATS", "export", "format_line", "printable", "timeline"]

FORMATS = ("jsonl", "md", "html")


def export(events: list[dict], fmt: str) -> str:
    """The events rendered as `jsonl`, `md` or `html`."""
    renderers: dict[str, Callable[[list[dict]], str]] = {
        "jsonl": _jsonl,
        "md": _markdown,
        "html": _html,
    }
    if fmt not in renderers:
        raise ValueError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    return renderers[fmt](events)


def format_line(event: dict) -> str:
    """`HH:MM:SS LEVEL category [run/step] message`, aligned for a terminal."""
    where = _where(event)
    parts = [
        _clock(event),
        f"{event.get('level', '?'):<7}",
        f"{event.get('category', '?'):<7}",
        f"[{where}]" if where else "",
        str(event.get("message", "")),
    ]
    return one_line(" ".join(part for part in parts if part))


def timeline(events: list[dict]) -> str:
    """`nexus show`'s view of the runs in `events`, safe to print on a terminal."""
    from .run_timeline import timeline as run_timeline  # plans, figures: for `nexus show`

    return printable(run_timeline(events))


def _clock(event: dict) -> str:
    ts = str(event.get("ts", ""))
    return ts[11:19] if len(ts) >= 19 else ts or "--:--:--"


def _where(event: dict) -> str:
    run, step = event.get("run"), event.get("step")
    if run is None and step is None:
        return ""
    return f"{run or '-'}/{step}" if step is not None else str(run)


def _jsonl(events: list[dict]) -> str:
    return b"".join(encode_line(event) for event in events).decode("utf-8")


def _span(events: list[dict]) -> str:
    if not events:
        return "No events."
    first, last = events[0].get("ts", "?"), events[-1].get("ts", "?")
    noun = "event" if len(events) == 1 else "events"
    return f"{len(events)} {noun}, {first} to {last}."


def _md_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _markdown(events: list[dict]) -> str:
    lines = [
        "# NEXUS journal",
        "",
        _span(events),
        "",
        "| time | level | category | run | step | message |",
        "|---|---|---|---|---|---|",
    ]
    for event in events:
        cells = [event.get(key) for key in ("ts", "level", "category", "run", "step", "message")]
        lines.append("| " + " | ".join(_md_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; position: sticky; top: 0; }
td.ts { white-space: nowrap; font-family: monospace; }
tr.WARNING td.level { color: #a60; } tr.ERROR td.level { color: #c00; font-weight: bold; }
tr.DEBUG { color: #777; }
pre { margin: 4px 0; max-height: 30em; overflow: auto; background: #f8f8f8; padding: 6px; }
"""


def _html(events: list[dict]) -> str:
    import html  # here: only an HTML export needs it

    rows = []
    for event in events:
        data = event.get("data") or {}
        details = (
            "<details><summary>data</summary><pre>"
            + html.escape(json.dumps(data, indent=2, ensure_ascii=False))
            + "</pre></details>"
            if data
            else ""
        )
        level = html.escape(str(event.get("level", "")))
        cells = [
            f'<td class="ts">{html.escape(str(event.get("ts", "")))}</td>',
            f'<td class="level">{level}</td>',
            f"<td>{html.escape(str(event.get('category', '')))}</td>",
            f"<td>{html.escape(_where(event))}</td>",
            f"<td>{html.escape(str(event.get('message', '')))}{details}</td>",
        ]
        rows.append(f'<tr class="{level}">' + "".join(cells) + "</tr>")
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            "<title>NEXUS journal</title>",
            f"<style>{_STYLE}</style></head><body>",
            "<h1>NEXUS journal</h1>",
            f"<p>{html.escape(_span(events))}</p>",
            "<table><thead><tr><th>time</th><th>level</th><th>category</th>"
            "<th>run/step</th><th>message</th></tr></thead><tbody>",
            *rows,
            "</tbody></table></body></html>",
            "",
        ]
    )
