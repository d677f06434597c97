"""call_tool turns every model mistake into an observation; tool_specs offers the tools."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexus_ls.tools import ToolContext, call_tool, get_tool, tool_specs

OFFERED = [
    "spawn_agent",
    "wait_agents",
    "merge_agent",
    "send_message",
    "deploy",
    "read_file",
    "list_files",
    "write_file",
    "edit_file",
    "remember",
    "recall",
    "update_plan",
    "read_output",
    "search",
    "start_service",
    "service_logs",
    "stop_service",
    "run_command",
    "run_tests",
    "finish",
]


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    (tmp_path / "a.txt").write_text("alpha\nbeta\n")
    return ToolContext(root=tmp_path)


def test_specs_offer_exactly_the_current_tools() -> None:
    specs = tool_specs()
    assert [s["function"]["name"] for s in specs] == OFFERED
    for spec in specs:
        assert spec["type"] == "function"
        parameters = spec["function"]["parameters"]
        assert parameters["type"] == "object"
        assert parameters["properties"]["reason"]["type"] == "string"
        assert "reason" not in parameters["required"]
        assert spec["function"]["description"]
    by_name = {s["function"]["name"]: s["function"]["parameters"] for s in specs}
    assert by_name["edit_file"]["required"] == ["path"]
    assert {"old", "new", "replace_all", "edits"} <= set(by_name["edit_file"]["properties"])
    assert set(by_name["read_file"]["properties"]) == {"path", "start_line", "end_line", "reason"}
    assert by_name["finish"]["required"] == ["summary"]


def test_specs_for_named_tools_and_unknown_names() -> None:
    assert [s["function"]["name"] for s in tool_specs(["finish", "search"])] == [
        "finish",
        "search",
    ]
    with pytest.raises(KeyError):
        tool_specs(["teleport"])
    assert get_tool("teleport") is None


def test_finish_echoes_the_summary(ctx: ToolContext) -> None:
    result = call_tool(ctx, "finish", {"summary": "fixed the bug", "success": False})
    assert result.ok and result.output == "fixed the bug"
    assert result.data == {"summary": "fixed the bug", "success": False}
    tool = get_tool("finish")
    assert tool is not None and tool.run(ctx, summary="done").data["success"] is True


def test_unknown_tool_lists_the_known_ones(ctx: ToolContext) -> None:
    result = call_tool(ctx, "delete_everything", {})
    assert not result.ok
    assert result.output.startswith("error: there is no tool named 'delete_everything'")
    assert all(name in result.output for name in OFFERED)


def test_arguments_as_json_text(ctx: ToolContext) -> None:
    result = call_tool(ctx, "read_file", '{"path": "a.txt", "reason": "look"}')
    assert result.ok and "     1\talpha" in result.output


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ('{"path": "a.txt"', "not valid JSON"),
        ('["a.txt"]', "must be a JSON object"),
        ({}, "missing required argument(s) path"),
        ({"path": "a.txt", "verbose": True}, "unexpected argument(s) verbose"),
        ({"path": 7}, "argument path must be of type string, not integer"),
        ({"path": "a.txt", "start_line": "2"}, "start_line must be of type integer, not string"),
        ({"path": "a.txt", "start_line": True}, "start_line must be of type integer, not boolean"),
    ],
)
def test_bad_arguments_become_errors_naming_the_fix(
    ctx: ToolContext, arguments: dict[str, object] | str, words: str
) -> None:
    result = call_tool(ctx, "read_file", arguments)
    assert not result.ok
    assert result.output.startswith("error: read_file: ")
    assert words in result.output
    if "argument(s)" in words or "JSON" in words:
        assert "read_file takes {path: string, start_line: integer (optional)" in result.output


def test_reason_nulls_and_whole_floats_are_accepted(ctx: ToolContext) -> None:
    args = {"path": "a.txt", "start_line": 2.0, "end_line": None, "reason": "check beta"}
    result = call_tool(ctx, "read_file", args)
    assert result.ok
    assert result.output.splitlines()[0] == "     2\tbeta"


def test_output_is_never_empty_and_always_capped(tmp_path: Path) -> None:
    ctx = ToolContext(root=tmp_path, output_limit=500)
    (tmp_path / "empty.txt").write_text("")
    assert call_tool(ctx, "read_file", {"path": "empty.txt"}).output == "empty.txt is empty"
    assert call_tool(ctx, "finish", {"summary": "  "}).output == "finished"
    (tmp_path / "wide.txt").write_text("y" * 5000)
    wide = call_tool(ctx, "read_file", {"path": "wide.txt"})
    assert len(wide.output) <= 500 and "characters cut" in wide.output
