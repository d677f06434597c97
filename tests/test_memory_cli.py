"""`nexus memory list|show|add|forget|export` through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import make_repo, nexus


def test_add_list_show_forget_and_export(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p", {"a.py": "x = 1\n"})
    assert nexus(repo, "memory", "list").stdout.startswith("no lessons yet")

    added = nexus(repo, "memory", "add", "Lint with `ruff check .`", "--tag", "lint")
    assert added.code == 0, added.stderr
    assert added.stdout == "added L1: Lint with `ruff check .`\n"
    nexus(repo, "memory", "add", "The API docs live in docs/api")
    again = nexus(repo, "memory", "add", "lint with `ruff check .`", "--tag", "ruff")
    assert again.stdout == "already known, confirmed L1: Lint with `ruff check .`\n"

    listed = nexus(repo, "memory", "list").stdout.splitlines()
    assert (
        listed[0].startswith("L1")
        and "1.25  Lint with `ruff check .` (added by the user)" in listed[0]
    )
    assert listed[1].startswith("L2") and "1.00  The API docs live in docs/api" in listed[1]
    as_json = nexus(repo, "memory", "list", "--json").json()
    assert [(d["id"], d["tags"], d["offered"]) for d in as_json] == [
        ("L1", ["lint", "ruff"], True), ("L2", [], True)
    ]  # fmt: skip

    shown = nexus(repo, "memory", "show", "l1").stdout
    assert "text       Lint with `ruff check .`" in shown
    assert "source     added by the user" in shown and "tags       lint, ruff" in shown
    one = nexus(repo, "memory", "show", "L1", "--json").json()
    assert set(one) >= {"id", "text", "tags", "source_run", "evidence", "weight", "uses",
                        "created", "last_confirmed", "strength"}  # fmt: skip

    assert nexus(repo, "memory", "forget", "L2").stdout == (
        "forgot L2: The API docs live in docs/api\n"
    )
    markdown = nexus(repo, "memory", "export").stdout
    assert markdown.startswith("# NEXUS memory\n") and "**L1** Lint with" in markdown
    assert "docs/api" not in markdown
    exported = nexus(repo, "memory", "export", "--json").json()
    assert [d["id"] for d in exported] == ["L1"]

    # Every change is in the journal, category memory.
    events = nexus(repo, "log", "--category", "memory", "--json").lines()
    assert [e["data"]["action"] for e in events] == ["added", "added", "confirmed", "forgot"]
    assert all(e["run"] is None for e in events)


def test_bad_input_gets_a_clear_error_and_no_traceback(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p", {"a.py": "x = 1\n"})
    key = "AKIA" + "ABCDEFGHIJKLMNOP"
    for args, words in [
        (("show", "L9"), "there is no lesson 'L9'"),
        (("forget", "banana"), "there is no lesson 'banana'"),
        (("add", "   "), "the lesson is empty"),
        (("add", f"deploy with {key}"), "not stored: the lesson holds a secret (aws-access-key)"),
        (("add", "x", "--tag", ""), "each tag must be a non-empty word"),
    ]:
        result = nexus(repo, "memory", *args)
        assert result.code == 2, (args, result.stderr)
        assert f"nexus: error: {words}" in result.stderr
        assert "Traceback" not in result.stderr
    assert nexus(repo, "memory", "frobnicate").code == 2  # argparse names the choices
    (Path(repo) / ".git" / "nexus" / "memory.json").write_text("[]")
    damaged = nexus(repo, "memory", "list")
    assert damaged.code == 2 and "is not a JSON object; move it away" in damaged.stderr
    assert key not in (Path(repo) / ".git" / "nexus" / "journal.jsonl").read_text()
    refused = nexus(repo, "log", "--category", "memory", "--json").lines()
    assert [e["message"] for e in refused] == [
        "not stored: the lesson holds a secret (aws-access-key)"
    ]
    assert json.dumps(refused).count(key) == 0
