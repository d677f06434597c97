"""edit_file's replace_all and several edits in one call, all or none."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexus_ls.tools import ToolContext, call_tool

SOURCE = "def a(x: int) -> int:\n    return x\n\n\ndef b(x: int) -> int:\n    return x\n"


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    (tmp_path / "m.py").write_text(SOURCE)
    return ToolContext(root=tmp_path)


def test_several_matches_say_replace_all_is_the_way(ctx: ToolContext) -> None:
    result = call_tool(ctx, "edit_file", {"path": "m.py", "old": "x: int", "new": "x: float"})
    assert not result.ok
    assert "matches 2 places (lines 1, 5)" in result.output and "replace_all" in result.output
    assert (ctx.root / "m.py").read_text() == SOURCE


def test_replace_all_changes_every_occurrence(ctx: ToolContext) -> None:
    args = {"path": "m.py", "old": "x: int", "new": "x: float", "replace_all": True}
    result = call_tool(ctx, "edit_file", args)
    assert result.ok, result.output
    assert (ctx.root / "m.py").read_text() == SOURCE.replace("x: int", "x: float")
    assert "2 places replaced, lines 1-5" in result.output.splitlines()[0]
    assert result.data["replaced"] == 2 and result.paths == ["m.py"]


def test_edits_are_made_in_order(ctx: ToolContext) -> None:
    edits = [
        {
            "old": "def a(x: int) -> int:\n    return x",
            "new": "def a(x: int) -> int:\n    return x + 1",
        },
        {
            "old": "def b(x: int) -> int:\n    return x",
            "new": "def b(x: int) -> int:\n    return 2 * x",
        },
    ]
    result = call_tool(ctx, "edit_file", {"path": "m.py", "edits": edits})
    assert result.ok, result.output
    text = (ctx.root / "m.py").read_text()
    assert "return x + 1" in text and "return 2 * x" in text
    assert result.data["edits"] == 2


def test_one_failing_edit_leaves_the_file_unchanged(ctx: ToolContext) -> None:
    edits = [
        {"old": "    return x\n\n\ndef b", "new": "    return -x\n\n\ndef b"},
        {"old": "def c(", "new": "def d("},
    ]
    result = call_tool(ctx, "edit_file", {"path": "m.py", "edits": edits})
    assert not result.ok
    assert result.output.startswith("error: edit 2 of 2: `old` was not found")
    assert "no edit was made; the file is unchanged" in result.output
    assert (ctx.root / "m.py").read_text() == SOURCE


def test_edits_and_old_new_together_are_refused(ctx: ToolContext) -> None:
    args = {"path": "m.py", "old": "x", "new": "y", "edits": [{"old": "x", "new": "y"}]}
    result = call_tool(ctx, "edit_file", args)
    assert not result.ok and "either old/new or edits" in result.output
    assert (ctx.root / "m.py").read_text() == SOURCE


def test_an_edit_with_a_wrong_shape_names_the_fix(ctx: ToolContext) -> None:
    result = call_tool(ctx, "edit_file", {"path": "m.py", "edits": [{"old": "x"}]})
    assert not result.ok and "edits" in result.output
    assert (ctx.root / "m.py").read_text() == SOURCE
