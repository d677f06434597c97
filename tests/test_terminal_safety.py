"""Escape sequences a model chooses (in file names, its words, a command's output) never
reach the user's terminal raw: `nexus run` progress, `nexus log`, `nexus show`, `nexus runs`."""

from __future__ import annotations

from pathlib import Path

from conftest import make_repo, nexus
from scripted_model import call

from nexus_ls.journal import printable

TITLE = "\x1b]0;pwned\x07"  # sets the terminal's title
CLEAR = "\x1b[2J\x1b[H"  # clears the screen


def test_printable_escapes_controls_and_keeps_lines() -> None:
    assert printable(f"a{CLEAR}b\tc\nd\x9b\u202e") == "a\\x1b[2J\\x1b[Hb\tc\nd\\x9b\\u202e"
    assert printable("plain — text ✓") == "plain — text ✓"


def test_no_raw_escape_reaches_the_terminal(tmp_path: Path, model) -> None:
    repo = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    server = model(
        [
            call("write_file", f"I write{TITLE}", path=f"x{TITLE}.txt", content="x\n"),
            call("run_command", command=f"printf '{CLEAR}done\u009b\u202e'"),
            call("finish", summary=f"all{CLEAR}good"),
        ]
    )
    run = nexus(repo, "run", f"task{CLEAR}", "--base-url", server.url)
    assert run.code == 0, run.stderr
    outputs = [run.stdout, run.stderr]
    run_id = run.stdout.split("nexus/")[1].split()[0]
    for args in (
        ["log"],
        ["log", "--json"],
        ["show", run_id],
        ["runs"],
        ["export", "--format", "jsonl"],
        ["export", "--format", "md"],
    ):
        result = nexus(repo, *args)
        assert result.code == 0, result.stderr
        outputs.append(result.stdout)
    for text in outputs:
        assert "\x1b" not in text and "\x07" not in text
        assert "\x9b" not in text and "\u202e" not in text
    assert "x\\x1b]0;pwned\\x07.txt" in run.stderr
