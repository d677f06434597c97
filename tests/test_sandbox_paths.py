"""Every way a path could leave the worktree is refused with a message a model can act on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers_git import make_repo, write

from nexus_ls.sandbox import (
    PathEscape,
    create_worktree,
    open_workspace,
    relative,
    resolve_inside,
)
from nexus_ls.sandbox.snapshot import snapshot


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "proj", {"a.txt": "a\n", "sub/b.txt": "b\n"})
    outside = tmp_path / "outside"
    write(outside, "secret.txt", "secret\n")
    os.symlink(outside / "secret.txt", root / "link_file_out")
    os.symlink(outside, root / "link_dir_out")
    os.symlink(tmp_path / "outside" / "missing.txt", root / "dangling_out")
    os.symlink("sub", root / "link_dir_in")
    os.symlink("a.txt", root / "link_file_in")
    os.symlink(".git/config", root / "link_to_git")
    return root


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a.txt", "a.txt"),
        ("sub/b.txt", "sub/b.txt"),
        ("sub/../a.txt", "a.txt"),
        ("./sub/./b.txt", "sub/b.txt"),
        ("new/dir/file.txt", "new/dir/file.txt"),
        ("link_dir_in/b.txt", "sub/b.txt"),
        ("link_file_in", "a.txt"),
        ("", "."),
        (".", "."),
        (".gitignore", ".gitignore"),
        ("sub/.github/workflow.yml", "sub/.github/workflow.yml"),
    ],
)
def test_paths_inside_resolve(root: Path, path: str, expected: str) -> None:
    resolved = resolve_inside(root, path)
    assert resolved.is_absolute()
    assert resolved == Path(os.path.realpath(root / expected))
    assert relative(root, resolved) == expected


@pytest.mark.parametrize(
    "path", ["..", "../x", "../outside/secret.txt", "sub/../../x", "a/../../.."]
)
def test_dot_dot_out(root: Path, path: str) -> None:
    with pytest.raises(PathEscape) as err:
        resolve_inside(root, path)
    assert str(err.value) == (
        f"path '{path}' is outside the worktree; use a path relative to the project root"
    )


def test_absolute_paths(root: Path) -> None:
    for path in ("/etc/passwd", str(root / "a.txt")):
        with pytest.raises(PathEscape, match="is absolute; use a path relative to the project"):
            resolve_inside(root, path)


@pytest.mark.parametrize(
    "path",
    [
        "link_file_out",
        "link_dir_out",
        "link_dir_out/secret.txt",
        "link_dir_out/new/f.txt",
        "dangling_out",
        "sub/../link_dir_out/x",
    ],
)
def test_symlinks_out(root: Path, path: str) -> None:
    with pytest.raises(PathEscape, match="symlink to outside the worktree"):
        resolve_inside(root, path)


@pytest.mark.parametrize(
    "path", [".git", ".git/config", ".GIT/HEAD", "sub/../.git/hooks/x", "link_to_git", "sub/.git"]
)
def test_git_metadata(root: Path, path: str) -> None:
    with pytest.raises(PathEscape, match=r"inside \.git"):
        resolve_inside(root, path)


def test_nul_byte(root: Path) -> None:
    with pytest.raises(PathEscape, match="NUL"):
        resolve_inside(root, "a.txt\0.png")


def test_escape_is_a_value_error() -> None:
    assert issubclass(PathEscape, ValueError)


def test_root_given_through_a_symlink(root: Path, tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    os.symlink(root, alias)
    assert resolve_inside(alias, "sub/b.txt") == Path(os.path.realpath(root / "sub/b.txt"))
    with pytest.raises(PathEscape):
        resolve_inside(alias, "../outside/secret.txt")


def test_run_worktree_under_the_git_dir_is_usable(root: Path) -> None:
    ws = open_workspace(root)
    wt = create_worktree(ws, "r1", snapshot(ws))
    assert ".git" in wt.parts  # the worktree lives in the state dir
    assert resolve_inside(wt, "sub/b.txt") == wt / "sub" / "b.txt"
    with pytest.raises(PathEscape, match=r"inside \.git"):
        resolve_inside(wt, ".git")  # the worktree's own .git file
    with pytest.raises(PathEscape, match="outside the worktree"):
        resolve_inside(wt, "../../../a.txt")


def test_relative_refuses_outside(root: Path, tmp_path: Path) -> None:
    assert relative(root, root) == "."
    assert relative(root, root / "sub" / "b.txt") == "sub/b.txt"
    with pytest.raises(PathEscape):
        relative(root, tmp_path / "outside" / "secret.txt")
