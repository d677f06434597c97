"""The file tools on real files in a real git work tree, including attempts to escape it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from nexus_ls.tools import ToolContext, call_tool


@pytest.fixture
def root(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "app.py").write_text("def main():\n    print('hello')\n    return 0\n")
    (repo / "src" / "pkg").mkdir(parents=True)
    (repo / "src" / "pkg" / "util.py").write_text("VALUE = 42\n\n\ndef helper():\n    pass\n")
    (repo / "README.md").write_text("# Demo\nhello world\n")
    (repo / ".gitignore").write_text("build/\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.py").write_text("hello = 'generated'\n")
    return repo


@pytest.fixture
def ctx(root: Path) -> ToolContext:
    return ToolContext(root=root)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder next to the worktree holding a file the tools must never read or change."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("do not read\n")
    return folder


def test_read_file_numbers_lines_and_honours_range(ctx: ToolContext) -> None:
    whole = call_tool(ctx, "read_file", {"path": "app.py"})
    assert whole.ok
    assert whole.output.splitlines()[1] == "     2\t    print('hello')"
    part = call_tool(ctx, "read_file", {"path": "app.py", "start_line": 2, "end_line": 2})
    assert part.ok
    assert part.output.splitlines()[0] == "     2\t    print('hello')"
    assert "[lines 2-2 of 3; pass start_line=3 to read on]" in part.output
    assert part.data == {"path": "app.py", "start_line": 2, "end_line": 2, "total_lines": 3}


def test_read_file_caps_long_files_and_says_how_to_go_on(ctx: ToolContext) -> None:
    (ctx.root / "long.txt").write_text("".join(f"line {n}\n" for n in range(1, 5001)))
    result = call_tool(ctx, "read_file", {"path": "long.txt"})
    assert result.ok
    assert len(result.output) <= ctx.output_limit
    last = result.data["end_line"]
    assert 100 < last < 5000
    assert f"pass start_line={last + 1} to read on" in result.output


def test_read_file_refuses_missing_binary_directory_and_past_end(ctx: ToolContext) -> None:
    (ctx.root / "blob.bin").write_bytes(b"\x00\x01\x02")
    cases = {
        "nope.py": "does not exist",
        "blob.bin": "binary",
        "src": "is a directory",
    }
    for path, words in cases.items():
        result = call_tool(ctx, "read_file", {"path": path})
        assert not result.ok
        assert result.output.startswith("error: ") and words in result.output
    past = call_tool(ctx, "read_file", {"path": "app.py", "start_line": 10})
    assert not past.ok and "only 3 lines" in past.output


def test_list_files_is_like_git_ls_files(ctx: ToolContext) -> None:
    result = call_tool(ctx, "list_files", {})
    assert result.ok
    assert result.output.splitlines() == [
        "4 files",
        ".gitignore",
        "README.md",
        "app.py",
        "src/pkg/util.py",
    ]
    assert result.data["count"] == 4


def test_list_files_filters_by_folder_and_glob(ctx: ToolContext) -> None:
    assert call_tool(ctx, "list_files", {"pattern": "*.py"}).output.splitlines() == [
        "2 files",
        "app.py",
        "src/pkg/util.py",
    ]
    in_src = call_tool(ctx, "list_files", {"path": "src", "pattern": "*.py"})
    assert in_src.output.splitlines() == ["1 file", "src/pkg/util.py"]
    deep = call_tool(ctx, "list_files", {"pattern": "src/**/*.py"})
    assert deep.output.splitlines() == ["1 file", "src/pkg/util.py"]
    none = call_tool(ctx, "list_files", {"pattern": "*.rs"})
    assert none.ok and "no files matching '*.rs'" in none.output


def test_list_files_outside_git_skips_dot_git_and_caps_count(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    (plain / ".git").mkdir(parents=True)
    (plain / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (plain / "many").mkdir()
    for n in range(600):
        (plain / "many" / f"f{n:03}.txt").write_text("x\n")
    result = call_tool(ToolContext(root=plain), "list_files", {})
    assert result.ok
    lines = result.output.splitlines()
    assert lines[0] == "600 files; showing the first 500 (narrow with path or pattern)"
    assert lines[1] == "many/f000.txt"
    assert not any(".git" in line for line in lines)


def test_write_file_creates_folders_and_records_a_diff(ctx: ToolContext) -> None:
    result = call_tool(ctx, "write_file", {"path": "docs/new/guide.md", "content": "# Guide\n"})
    assert result.ok and result.category == "edit"
    assert (ctx.root / "docs" / "new" / "guide.md").read_text() == "# Guide\n"
    assert result.data["created"] is True
    assert (
        result.data["diff"] == "--- /dev/null\n+++ b/docs/new/guide.md\n@@ -0,0 +1 @@\n+# Guide\n"
    )
    again = call_tool(ctx, "write_file", {"path": "app.py", "content": "print('bye')\n"})
    assert again.ok and again.data["created"] is False
    assert "-    print('hello')\n" in again.data["diff"] and "+print('bye')\n" in again.data["diff"]
    assert (ctx.root / "app.py").read_text() == "print('bye')\n"


def test_edit_file_exact(ctx: ToolContext) -> None:
    result = call_tool(
        ctx, "edit_file", {"path": "app.py", "old": "    return 0\n", "new": "    return 1\n"}
    )
    assert result.ok and result.category == "edit"
    assert (ctx.root / "app.py").read_text() == "def main():\n    print('hello')\n    return 1\n"
    assert result.data["method"] == "exact"
    assert "-    return 0\n+    return 1\n" in result.data["diff"]


def test_edit_file_tolerates_indentation_and_reindents(ctx: ToolContext) -> None:
    old = "print('hello')\nreturn 0"
    new = "print('bye')\nif True:\n    return 2"
    result = call_tool(ctx, "edit_file", {"path": "app.py", "old": old, "new": new})
    assert result.ok, result.output
    assert result.data["method"] == "whitespace"
    assert (ctx.root / "app.py").read_text() == (
        "def main():\n    print('bye')\n    if True:\n        return 2\n"
    )


def test_edit_file_keeps_crlf_line_endings(ctx: ToolContext) -> None:
    (ctx.root / "win.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    result = call_tool(ctx, "edit_file", {"path": "win.txt", "old": "two\n", "new": "2\n"})
    assert result.ok, result.output
    assert (ctx.root / "win.txt").read_bytes() == b"one\r\n2\r\nthree\r\n"


def test_edit_file_ambiguous_and_not_found_are_readable_errors(ctx: ToolContext) -> None:
    (ctx.root / "twice.py").write_text("x = 1\ny = 2\nx = 1\n")
    twice = call_tool(ctx, "edit_file", {"path": "twice.py", "old": "x = 1", "new": "x = 3"})
    assert not twice.ok
    assert "matches 2 places (lines 1, 3)" in twice.output
    missing = call_tool(
        ctx, "edit_file", {"path": "app.py", "old": "    print('helo')\n", "new": "pass\n"}
    )
    assert not missing.ok and missing.output.startswith("error: ")
    assert "     2|     print('hello')" in missing.output
    assert (ctx.root / "app.py").read_text() == "def main():\n    print('hello')\n    return 0\n"
    absent = call_tool(ctx, "edit_file", {"path": "new.py", "old": "a", "new": "b"})
    assert "does not exist; use write_file to create it" in absent.output


def test_os_errors_become_observations(ctx: ToolContext) -> None:
    result = call_tool(ctx, "write_file", {"path": "app.py/inner.txt", "content": "x"})
    assert not result.ok
    assert result.output.startswith("error: ")
    assert str(ctx.root) not in result.output


ESCAPES = ["../outside/secret.txt", "/etc/passwd", "link/secret.txt", ".git/config"]


def _calls(path: str) -> list[tuple[str, dict[str, str]]]:
    return [
        ("read_file", {"path": path}),
        ("list_files", {"path": path}),
        ("search", {"pattern": "read", "path": path}),
        ("write_file", {"path": path, "content": "owned\n"}),
        ("edit_file", {"path": path, "old": "do not read", "new": "owned"}),
    ]


@pytest.mark.parametrize("path", ESCAPES)
def test_every_file_tool_refuses_paths_outside_the_worktree(
    ctx: ToolContext, outside: Path, path: str
) -> None:
    (ctx.root / "link").symlink_to(outside, target_is_directory=True)
    git_config = (ctx.root / ".git" / "config").read_text()
    for name, args in _calls(path):
        result = call_tool(ctx, name, args)
        assert not result.ok, (name, path)
        assert result.output.startswith("error: path ")
        assert "do not read" not in result.output
    assert (outside / "secret.txt").read_text() == "do not read\n"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (ctx.root / ".git" / "config").read_text() == git_config


def test_write_through_symlinked_file_is_refused(ctx: ToolContext, outside: Path) -> None:
    (ctx.root / "innocent.txt").symlink_to(outside / "secret.txt")
    result = call_tool(ctx, "write_file", {"path": "innocent.txt", "content": "owned\n"})
    assert not result.ok and "symlink" in result.output
    assert (outside / "secret.txt").read_text() == "do not read\n"
