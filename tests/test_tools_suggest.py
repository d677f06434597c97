"""Suggestions for a path that does not exist, from a real git work tree."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_git import make_repo, write

from nexus_ls.tools.suggest import closest_paths, not_found

FILES: dict[str, bytes | str] = {
    "lib/app.py": "print('moved here')\n",
    "src/pkg/util.py": "VALUE = 42\n",
    "src/pkg/helpers.py": "pass\n",
    "src/components/button.tsx": "export {}\n",
    "tests/test_util.py": "pass\n",
    "docs/index.md": "# Docs\n",
    ".gitignore": "build/\n",
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "repo", FILES)
    write(repo, "build/app.py", "generated\n")  # ignored: never suggested
    write(repo, "notes/todo.txt", "untracked but not ignored\n")
    return repo


def test_a_moved_file_is_found_by_its_name(root: Path) -> None:
    assert closest_paths(root, "src/app.py")[0] == "lib/app.py"
    assert "build/app.py" not in closest_paths(root, "src/app.py", limit=10)
    assert not_found(root, "src/app.py").startswith(
        "src/app.py does not exist; did you mean lib/app.py"
    )


def test_a_misspelt_name_is_found(root: Path) -> None:
    assert closest_paths(root, "src/pkg/utli.py")[0] == "src/pkg/util.py"
    assert closest_paths(root, "src/pkg/helper.py")[0] == "src/pkg/helpers.py"
    assert closest_paths(root, "notes/todo.md")[0] == "notes/todo.txt"  # untracked counts


def test_a_misspelt_folder_and_a_missing_extension(root: Path) -> None:
    assert closest_paths(root, "src/pkg/util")[0] == "src/pkg/util.py"
    assert closest_paths(root, "src/compnents")[0] == "src/components/"
    assert closest_paths(root, "src/compnents/button.tsx")[0] == "src/components/button.tsx"
    assert "src/pkg/" in closest_paths(root, "src/pkgs/")


def test_case_and_spelling_of_the_path_are_forgiven(root: Path) -> None:
    assert closest_paths(root, "SRC/Pkg/Util.py")[0] == "src/pkg/util.py"
    assert closest_paths(root, "./src//pkg/utli.py")[0] == "src/pkg/util.py"
    assert closest_paths(root, str(root / "src/pkg/utli.py"))[0] == "src/pkg/util.py"


def test_the_message_lists_up_to_three(root: Path) -> None:
    for name in ("a", "b", "c", "d"):
        write(root, f"{name}/util.py", "pass\n")
    message = not_found(root, "x/util.py")
    assert message.startswith("x/util.py does not exist; did you mean ")
    assert message.endswith("?") and message.count("util.py,") == 2
    assert closest_paths(root, "x/util.py", limit=10) == [
        "a/util.py",
        "b/util.py",
        "c/util.py",
        "d/util.py",
        "src/pkg/util.py",
        "tests/test_util.py",
    ]


def test_nonsense_gets_no_suggestion(root: Path) -> None:
    assert closest_paths(root, "qwertyuiop/zxcvbnm.cfg") == []
    assert closest_paths(root, "src/pkg/nonsense_thing.py") == []
    # A shared folder and extension alone make no suggestion: util.py scores 0.8 here.
    assert closest_paths(root, "src/pkg/main.py") == []
    assert closest_paths(root, "zzz.py") == []
    assert not_found(root, "zzz.py") == "zzz.py does not exist"
    assert not_found(root, "zzz.py", hint="; use write_file to create it") == (
        "zzz.py does not exist; use write_file to create it"
    )
    assert closest_paths(root, "") == [] and closest_paths(root, ".") == []


def test_outside_a_git_work_tree_the_folder_is_walked(tmp_path: Path) -> None:
    write(tmp_path / "plain", "src/main.py", "pass\n")
    assert closest_paths(tmp_path / "plain", "src/mian.py") == ["src/main.py"]
