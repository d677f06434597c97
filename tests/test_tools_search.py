"""The search tool on real files in a real git work tree: counts, context, filters, the
time budget, and ripgrep giving the same answers as the Python backend."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from helpers_git import make_repo, write

from nexus_ls.tools import search as search_tool
from nexus_ls.tools.base import ToolContext, ToolError, ToolResult
from nexus_ls.tools.search import SEARCH, search
from nexus_ls.validation import Invalid, validate

FILES: dict[str, bytes | str] = {
    "app.py": "def main():\n    print('hello')\n    return 0\n\n\ndef other():\n"
    "    x = 1\n    print('Hello again')\n    return x\n",
    "src/pkg/util.py": "VALUE = 42\n\n\ndef helper():\n    return 'hello'\n",
    "README.md": "# Demo\nhello world\n",
    ".gitignore": "build/\n",
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "repo", FILES)
    write(repo, "build/out.py", "hello = 'generated'\n")  # ignored: never searched
    return repo


@pytest.fixture
def ctx(root: Path) -> ToolContext:
    return ToolContext(root=root)


@pytest.fixture(autouse=True)
def python_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Python backend, whatever is installed; the ripgrep tests undo this."""
    monkeypatch.setattr(search_tool, "find_ripgrep", lambda root=None: None)


def call(ctx: ToolContext, **arguments: Any) -> ToolResult:
    """As the registry calls it: checked against the schema the model sees."""
    args = validate(SEARCH.args, arguments)
    return SEARCH.run(ctx, **args.model_dump(exclude={"reason"}, exclude_none=True))


def test_matches_print_path_line_text_after_the_total(ctx: ToolContext) -> None:
    result = call(ctx, pattern=r"hel+o")
    assert result.ok
    assert result.output.splitlines() == [
        "3 matches in 3 files",
        "README.md:2: hello world",
        "app.py:2:     print('hello')",
        "src/pkg/util.py:5:     return 'hello'",
    ]
    assert result.data == {
        "pattern": r"hel+o",
        "path": ".",
        "glob": None,
        "matches": 3,
        "files": 3,
        "literal": False,
        "timed_out": False,
        "backend": "python",
    }


def test_context_lines_are_marked_and_groups_split(ctx: ToolContext) -> None:
    result = call(ctx, pattern="print", context=1)
    assert result.output.splitlines() == [
        "2 matches in 1 file",
        "app.py-1- def main():",
        "app.py:2:     print('hello')",
        "app.py-3-     return 0",
        "--",
        "app.py-7-     x = 1",
        "app.py:8:     print('Hello again')",
        "app.py-9-     return x",
    ]


def test_context_groups_merge_and_stop_at_the_file_ends(ctx: ToolContext) -> None:
    write(ctx.root, "near.txt", "a hit\nb\nc hit\nd\ne\nf\ng\n")
    result = call(ctx, pattern="hit", context=2, path="near.txt")
    assert result.output.splitlines() == [
        "2 matches in 1 file",
        "near.txt:1: a hit",
        "near.txt-2- b",
        "near.txt:3: c hit",
        "near.txt-4- d",
        "near.txt-5- e",
    ]


def test_groups_in_different_files_are_split_too(ctx: ToolContext) -> None:
    lines = call(ctx, pattern="hello", context=1).output.splitlines()
    assert lines[0] == "3 matches in 3 files"
    assert lines.count("--") == 2
    assert lines[1:4] == ["README.md-1- # Demo", "README.md:2: hello world", "--"]


def test_limit_shows_the_first_matches_and_says_so(ctx: ToolContext) -> None:
    write(ctx.root, "big.txt", "needle\n" * 250)
    result = call(ctx, pattern="needle")
    lines = result.output.splitlines()
    assert (
        lines[0] == "250 matches in 1 file; showing the first 100; pass limit= or narrow path/glob"
    )
    assert lines[1:] == [f"big.txt:{n}: needle" for n in range(1, 101)]
    assert result.data["matches"] == 250
    few = call(ctx, pattern="needle", limit=3).output.splitlines()
    assert few == [
        "250 matches in 1 file; showing the first 3; pass limit= or narrow path/glob",
        "big.txt:1: needle",
        "big.txt:2: needle",
        "big.txt:3: needle",
    ]
    every = call(ctx, pattern="needle", limit=250).output.splitlines()
    assert every[0] == "250 matches in 1 file" and len(every) == 251


def test_limit_counts_across_files_in_path_order(ctx: ToolContext) -> None:
    for name in ("a.txt", "b.txt", "c.txt"):
        write(ctx.root, f"many/{name}", "x\n" * 3)
    result = call(ctx, pattern="x", path="many", limit=4)
    assert result.output.splitlines() == [
        "9 matches in 3 files; showing the first 4; pass limit= or narrow path/glob",
        "many/a.txt:1: x",
        "many/a.txt:2: x",
        "many/a.txt:3: x",
        "many/b.txt:1: x",
    ]


def test_output_that_would_not_fit_stops_at_a_line_and_says_so(root: Path) -> None:
    write(root, "wide.txt", ("needle " + "w" * 200 + "\n") * 100)
    result = call(ToolContext(root=root, output_limit=2_000), pattern="needle")
    lines = result.output.splitlines()
    shown = len(lines) - 1
    assert 0 < shown < 100
    assert lines[0] == f"100 matches in 1 file; showing the first {shown} (all that fit)"
    assert all(line.startswith("wide.txt:") and line.endswith("w") for line in lines[1:])
    assert len(result.output) <= 2_000


def test_limit_and_context_are_bounded(ctx: ToolContext) -> None:
    with pytest.raises(Invalid):
        validate(SEARCH.args, {"pattern": "x", "limit": 0})
    with pytest.raises(Invalid):
        validate(SEARCH.args, {"pattern": "x", "limit": 5000})
    with pytest.raises(Invalid):
        validate(SEARCH.args, {"pattern": "x", "context": 11})
    write(ctx.root, "huge.txt", "n\n" * 1500)
    result = search(ctx, "n", path="huge.txt", limit=5000)  # a direct caller is clamped
    assert result.output.splitlines()[0].startswith("1500 matches in 1 file; showing the first ")
    assert result.output.count("\nhuge.txt:") <= 1000


def test_glob_matches_at_any_depth_and_with_folders(ctx: ToolContext) -> None:
    result = call(ctx, pattern="hello", glob="*.py")
    assert result.output.splitlines() == [
        "2 matches in 2 files",
        "app.py:2:     print('hello')",
        "src/pkg/util.py:5:     return 'hello'",
    ]
    assert result.data["glob"] == "*.py"
    deep = call(ctx, pattern="hello", glob="src/**/*.py").output.splitlines()
    assert deep == ["1 match in 1 file", "src/pkg/util.py:5:     return 'hello'"]
    none = call(ctx, pattern="hello", glob="*.rs")
    assert none.ok and none.output == "no files matching glob '*.rs' under .; nothing searched"


def test_files_only_lists_files_with_their_counts(ctx: ToolContext) -> None:
    result = call(ctx, pattern="hello", files_only=True, ignore_case=True)
    assert result.output.splitlines() == [
        "4 matches in 3 files",
        "README.md: 1 match",
        "app.py: 2 matches",
        "src/pkg/util.py: 1 match",
    ]
    cut = call(ctx, pattern="hello", files_only=True, limit=1).output.splitlines()
    assert cut == [
        "3 matches in 3 files; showing the first 1 file; pass limit= or narrow path/glob",
        "README.md: 1 match",
    ]


def test_ignore_case(ctx: ToolContext) -> None:
    assert call(ctx, pattern="HELLO").output.startswith("no matches for 'HELLO' under .")
    result = call(ctx, pattern="HELLO", ignore_case=True, path="app.py")
    assert result.output.splitlines() == [
        "2 matches in 1 file",
        "app.py:2:     print('hello')",
        "app.py:8:     print('Hello again')",
    ]


def test_invalid_regex_is_searched_for_as_literal_text(ctx: ToolContext) -> None:
    result = call(ctx, pattern="print('hello'", path=".")
    lines = result.output.splitlines()
    assert lines[0] == "1 match in 1 file"
    assert lines[1].startswith("(not a valid regex: ") and "literal text" in lines[1]
    assert lines[2] == "app.py:2:     print('hello')"
    assert result.data["literal"] is True
    missing = call(ctx, pattern="(nowhere")
    assert missing.output.startswith("no matches for '(nowhere' under .\n(not a valid regex")


def test_catastrophic_pattern_is_stopped_within_its_budget(
    ctx: ToolContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_tool, "SEARCH_SECONDS", 0.5)
    write(ctx.root, "slow.txt", "a" * 40 + "b\n")
    started = time.monotonic()
    result = call(ctx, pattern="(a|aa)+$")  # Python's re: minutes
    assert time.monotonic() - started < 3
    assert result.ok and result.data["timed_out"] is True
    assert "search stopped after 0.5 s" in result.output
    assert "(a+)+" in result.output


def test_binary_ignored_linked_and_fifo_files_are_not_searched(
    ctx: ToolContext, tmp_path: Path
) -> None:
    write(ctx.root, "data.bin", b"VALUE\x00\x00binary")
    secret = write(tmp_path / "outside", "secret.txt", "VALUE outside\n")
    os.symlink(secret, ctx.root / "link.txt")
    os.mkfifo(ctx.root / "pipe")
    result = call(ctx, pattern="VALUE|generated")
    assert result.output.splitlines() == ["1 match in 1 file", "src/pkg/util.py:1: VALUE = 42"]


def test_lines_are_numbered_without_a_phantom_last_line(ctx: ToolContext) -> None:
    write(ctx.root, "blank.txt", "a\n\nb\n")
    write(ctx.root, "crlf.txt", "one\r\n\r\ntwo")
    assert call(ctx, pattern="^$", path="blank.txt").output.splitlines() == [
        "1 match in 1 file",
        "blank.txt:2:",
    ]
    assert call(ctx, pattern="two$", path="crlf.txt").output.splitlines()[1] == "crlf.txt:3: two"


def test_path_is_honoured_and_a_wrong_one_gets_suggestions(ctx: ToolContext) -> None:
    assert call(ctx, pattern="hello", path="src").output.splitlines()[0] == "1 match in 1 file"
    assert call(ctx, pattern="hello", path="src/pkg/util.py").data["files"] == 1
    with pytest.raises(
        ToolError, match=r"src/pkg/utl.py does not exist; did you mean src/pkg/util.py"
    ):
        call(ctx, pattern="hello", path="src/pkg/utl.py")
    with pytest.raises(ToolError, match="pattern is empty"):
        call(ctx, pattern="")


def test_the_schema_describes_every_argument() -> None:
    properties = SEARCH.parameters["properties"]
    assert SEARCH.name == "search"
    assert set(properties) == {
        "pattern",
        "path",
        "glob",
        "context",
        "files_only",
        "limit",
        "ignore_case",
        "reason",
    }
    assert SEARCH.parameters["required"] == ["pattern"]
    assert all(spec.get("description") for spec in properties.values())
    assert properties["limit"]["maximum"] == 1000 and properties["context"]["maximum"] == 10
    assert "Rust" in properties["pattern"]["description"]


# ripgrep


def _fake_rg(folder: Path, script: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "rg"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_a_ripgrep_that_cannot_parse_the_pattern_hands_over_to_python(
    ctx: ToolContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rg = _fake_rg(tmp_path / "bin", "echo 'rg: regex parse error:' >&2; exit 2")
    monkeypatch.setattr(search_tool, "find_ripgrep", lambda root=None: rg)
    result = call(ctx, pattern=r"(?<=print\()'hello")
    assert result.data["backend"] == "python"
    assert result.output.splitlines() == ["1 match in 1 file", "app.py:2:     print('hello')"]


def test_a_pattern_holding_a_nul_is_not_given_to_ripgrep(
    ctx: ToolContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rg = _fake_rg(tmp_path / "bin", "exit 1")  # as if it had found nothing
    monkeypatch.setattr(search_tool, "find_ripgrep", lambda root=None: rg)
    assert call(ctx, pattern="hello").data["backend"] == "ripgrep"
    result = call(ctx, pattern="a\0b")  # a file holding one is binary: nothing matches
    assert result.ok and result.data["backend"] == "python"


def test_a_slow_ripgrep_is_killed_when_the_budget_runs_out(
    ctx: ToolContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rg = _fake_rg(tmp_path / "bin", "exec sleep 30")
    monkeypatch.setattr(search_tool, "find_ripgrep", lambda root=None: rg)
    monkeypatch.setattr(search_tool, "SEARCH_SECONDS", 0.5)
    started = time.monotonic()
    result = call(ctx, pattern="hello")
    assert time.monotonic() - started < 3
    assert result.data["backend"] == "ripgrep" and result.data["timed_out"] is True
    assert (
        result.output.splitlines()[0] == "no matches for 'hello' under . before the search stopped"
    )
    assert "narrow path or glob" in result.output


def test_a_ripgrep_inside_the_worktree_is_never_run(
    ctx: ToolContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inside = _fake_rg(ctx.root / "tools", "exit 0")
    outside = _fake_rg(tmp_path / "bin", "exit 0")
    monkeypatch.undo()  # the real find_ripgrep, with the binary it finds replaced
    monkeypatch.setattr(search_tool, "_installed_ripgrep", lambda: inside)
    assert search_tool.find_ripgrep(ctx.root) is None
    monkeypatch.setattr(search_tool, "_installed_ripgrep", lambda: outside)
    assert search_tool.find_ripgrep(ctx.root) == outside


def test_relative_path_entries_are_not_searched_for_ripgrep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_rg(tmp_path / "bin", "exit 0")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "bin")
    search_tool._installed_ripgrep.cache_clear()
    try:
        found = search_tool._installed_ripgrep()
        assert found is None or not os.path.realpath(found).startswith(os.path.realpath(tmp_path))
    finally:
        search_tool._installed_ripgrep.cache_clear()


def test_the_ripgrep_wheel_is_found_by_its_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The `ripgrep` wheel installs `rg` among the scripts; its RECORD says where."""
    site = tmp_path / "venv" / "lib" / "site-packages"
    info = site / "ripgrep-14.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ripgrep\nVersion: 14.1.0\n")
    (info / "RECORD").write_text("../../bin/rg,,\nripgrep-14.1.0.dist-info/METADATA,,\n")
    rg = _fake_rg(tmp_path / "venv" / "bin", "exit 0")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    search_tool._installed_ripgrep.cache_clear()
    try:
        assert search_tool._installed_ripgrep() == str(Path(rg).resolve())
    finally:
        search_tool._installed_ripgrep.cache_clear()


RG = search_tool._installed_ripgrep()

CASES: list[dict[str, Any]] = [
    {"pattern": "hello"},
    {"pattern": "hello", "context": 2},
    {"pattern": "hello", "ignore_case": True, "context": 1},
    {"pattern": "^hello"},
    {"pattern": "hello$"},
    {"pattern": "^$"},
    {"pattern": "."},
    {"pattern": "hello", "files_only": True},
    {"pattern": "hello", "limit": 3, "context": 1},
    {"pattern": "l+", "limit": 1, "context": 3},
    {"pattern": r"\w+llo", "glob": "*.txt"},
    {"pattern": "h.llo", "ignore_case": True},
    {"pattern": "o", "path": "uni"},
    {"pattern": r"\bHello\b"},
    {"pattern": r"\d"},
    {"pattern": "[^a]", "files_only": True},
    {"pattern": "(?<=l)lo"},  # look-behind: not Rust regex, so Python answers
    {"pattern": "print("},  # invalid everywhere: literal
    {"pattern": "zzz"},
]


@pytest.mark.skipif(RG is None, reason="no ripgrep installed (an rg on PATH or the wheel)")
@pytest.mark.parametrize("arguments", CASES, ids=[str(c) for c in CASES])
def test_ripgrep_and_python_give_the_same_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arguments: dict[str, Any]
) -> None:
    root = make_repo(tmp_path / "repo", {"a.py": "def main():\n    print('hello')\n"})
    files: dict[str, bytes | str] = {
        "crlf.txt": "one hello\r\ntwo\r\nthree hello\r\n",
        "bom.txt": "\ufeffhello at start\nnext\n",
        "nonl.txt": "x\nhello no newline",
        "late-nul.txt": "hello\n" + "y\n" * 5000 + "\0hello\n",  # NUL after 8 KiB: text
        "bin.dat": b"hello\0\0",
        "-dash.txt": "hello dash\n",
        "sp ace/f i.txt": "hello space\n",
        "uni/\u00fc.txt": "h\u00e9llo w\u00f6rld\nH\u00c9LLO\n",
        "bad-utf8.txt": b"\xff\xfehello\n\xc3(\n",
        "long.txt": "a" * 5000 + "hello\n",
        ".gitignore": "build/\n",
        "build/x.txt": "hello ignored\n",
        "empty.txt": "",
        "blank.txt": "\n\n\n",
    }
    for name, content in files.items():
        write(root, name, content)
    os.symlink("a.py", root / "link.py")
    os.mkfifo(root / "fifo")
    ctx = ToolContext(root=root)
    monkeypatch.setattr(search_tool, "find_ripgrep", lambda root=None: RG)
    with_rg = call(ctx, **arguments)
    monkeypatch.setattr(search_tool, "find_ripgrep", lambda root=None: None)
    with_python = call(ctx, **arguments)
    assert with_rg.output == with_python.output
    rg_data, python_data = dict(with_rg.data), dict(with_python.data)
    assert python_data.pop("backend") == "python"
    assert rg_data.pop("backend") == (
        "python" if arguments["pattern"] in ("(?<=l)lo", "print(") else "ripgrep"
    )
    assert rg_data == python_data
    assert "ignored" not in with_rg.output and "link.py" not in with_rg.output
