"""`nexus run` then `nexus accept` on every shape of repository a user may have open.

Each case: a scripted model writes a new file and edits an existing one. The change must land
on the run's branch (on top of exactly what the user sees), the user's files, status, index and
HEAD must not move during the run, and accept must bring exactly that change, nothing else.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import clean_env, make_repo, nexus, sh
from scripted_model import call


@dataclass
class Case:
    """A prepared repository, where nexus is started from, and the change the model makes."""

    repo: Path
    new: tuple[str, str]  # path, content: written by write_file
    edit: tuple[str, str, str]  # path, old, new: applied by edit_file
    cwd: Path | None = None  # where nexus runs (default: the repo root)
    args: tuple[str, ...] = field(default_factory=tuple)  # e.g. ("-C", "sub")

    def expected_change(self) -> dict[str, bytes]:
        edit_path, old, new = self.edit
        before = (self.repo / edit_path).read_text(encoding="utf-8")
        assert before.count(old) == 1
        return {
            self.new[0]: self.new[1].encode(),
            edit_path: before.replace(old, new).encode(),
        }


def git_bytes(repo: Path, *args: str, check: bool = True) -> bytes:
    proc = subprocess.run(["git", *args], cwd=repo, env=clean_env(), capture_output=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {proc.stderr.decode()}")
    return proc.stdout


def settle(repo: Path) -> None:
    """Age every file and refresh the index once, so git itself will not rewrite it later.

    Files changed in the same instant as the index are "racily clean" and a later `git status`
    may rewrite the index to record them; that would look like NEXUS touching it.
    """
    past = time.time() - 60
    for path in repo.rglob("*"):
        if ".git" not in path.relative_to(repo).parts:
            os.utime(path, (past, past), follow_symlinks=False)
    git_bytes(repo, "update-index", "-q", "--refresh", check=False)


def user_state(repo: Path) -> dict[str, object]:
    """Everything a user would notice: files, status, index bytes, HEAD and branches."""
    index = repo / ".git" / "index"
    index_bytes = index.read_bytes() if index.exists() else None  # read before status runs
    files = {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }
    return {
        "files": files,
        "index": index_bytes,
        "status": git_bytes(repo, "status", "--porcelain", "-z", "--untracked-files=all"),
        "ignored": git_bytes(repo, "status", "--porcelain", "-z", "--ignored=matching"),
        "head": git_bytes(repo, "rev-parse", "--verify", "--quiet", "HEAD", check=False),
        "symref": git_bytes(repo, "symbolic-ref", "--quiet", "HEAD", check=False),
        "branches": git_bytes(repo, "branch", "--list", "--format=%(refname)"),
    }


def visible_files(repo: Path) -> dict[str, bytes]:
    """What the user sees and git does not ignore: what a run's base must hold."""
    listed = git_bytes(repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    names = {os.fsdecode(n) for n in listed.split(b"\0") if n}
    return {n: (repo / n).read_bytes() for n in sorted(names) if (repo / n).is_file()}


def tree_files(repo: Path, rev: str) -> dict[str, bytes]:
    listing = git_bytes(repo, "ls-tree", "-r", "-z", rev)
    files = {}
    for entry in filter(None, listing.split(b"\0")):
        meta, name = entry.split(b"\t", 1)
        sha = meta.split(b" ")[2].decode()
        files[os.fsdecode(name)] = git_bytes(repo, "cat-file", "blob", sha)
    return files


# The shapes ------------------------------------------------------------------------------


def no_commits(root: Path) -> Case:
    repo = make_repo(root, {"notes.txt": "first draft\n", "src/app.py": "x = 1\n"}, commit=False)
    return Case(repo, new=("src/new.py", "y = 2\n"), edit=("src/app.py", "x = 1", "x = 10"))


def detached_head(root: Path) -> Case:
    repo = make_repo(root, {"app.py": "x = 1\n"})
    (repo / "app.py").write_text("x = 1\nlater = True\n")
    sh(repo, "git", "commit", "-qam", "second")
    sh(repo, "git", "checkout", "-q", "--detach", "HEAD~1")
    return Case(repo, new=("new.py", "y = 2\n"), edit=("app.py", "x = 1", "x = 10"))


def dirty_tree(root: Path) -> Case:
    repo = make_repo(
        root,
        {
            ".gitignore": "*.log\n",
            "staged.txt": "s0\n",
            "unstaged.txt": "u0\n",
            "gone.txt": "g\n",
            "keep.py": "k = 1\n",
        },
    )
    (repo / "staged.txt").write_text("s1\n")
    (repo / "added.txt").write_text("new and staged\n")
    sh(repo, "git", "add", "staged.txt", "added.txt")
    (repo / "staged.txt").write_text("s2, staged then changed again\n")
    (repo / "unstaged.txt").write_text("u1\n")
    (repo / "scratch.txt").write_text("untracked\n")
    (repo / "gone.txt").unlink()
    (repo / "debug.log").write_text("ignored\n")
    return Case(repo, new=("new.py", "n = 2\n"), edit=("keep.py", "k = 1", "k = 10"))


def odd_names(root: Path) -> Case:
    repo = make_repo(root, {"dir with space/naïve café.txt": "bonjour\n", "plain name.txt": "p\n"})
    (repo / "dir with space/déjà vu.txt").write_text("untracked ünïcode\n")
    return Case(
        repo,
        new=("dir with space/ñew — fïle.txt", "hola\n"),
        edit=("dir with space/naïve café.txt", "bonjour", "bonsoir"),
    )


BINARY = bytes(range(256)) * 4 + b"\x00\xff\xfe binary tail"


def binary_file(root: Path) -> Case:
    repo = make_repo(root, {"assets/logo.png": BINARY, "assets/readme.txt": "the logo\n"})
    (repo / "assets/raw.dat").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00untracked\xff")
    return Case(
        repo,
        new=("assets/logo.txt", "alt text for the logo\n"),
        edit=("assets/readme.txt", "the logo", "the new logo"),
    )


def sub_with_flag(root: Path) -> Case:
    repo = make_repo(root, {"sub/mod.py": "v = 1\n", "top.txt": "t\n"})
    return Case(
        repo,
        new=("sub/added.py", "w = 2\n"),
        edit=("sub/mod.py", "v = 1", "v = 10"),
        args=("-C", "sub"),
    )


def sub_as_cwd(root: Path) -> Case:
    repo = make_repo(root, {"sub/deeper/mod.py": "v = 1\n", "top.txt": "t\n"})
    return Case(
        repo,
        new=("sub/deeper/added.py", "w = 2\n"),
        edit=("sub/deeper/mod.py", "v = 1", "v = 10"),
        cwd=repo / "sub" / "deeper",
    )


def unknown_encoding(root: Path) -> Case:
    """As in sphinx: `.gitattributes` names an encoding git cannot convert a file from,
    added after the file; every re-hash of that file fails."""
    repo = make_repo(root, {"tests/wrongenc.inc": b"caf\xe9\n", "mod.py": "v = 1\n"})
    (repo / ".gitattributes").write_text("tests/wrongenc.inc working-tree-encoding=iso-8859\n")
    sh(repo, "git", "add", ".gitattributes")
    sh(repo, "git", "commit", "-q", "-m", "attributes")
    return Case(repo, new=("added.py", "w = 2\n"), edit=("mod.py", "v = 1", "v = 10"))


SHAPES: dict[str, Callable[[Path], Case]] = {
    "no-commits": no_commits,
    "detached-head": detached_head,
    "dirty-tree": dirty_tree,
    "spaces-and-non-ascii": odd_names,
    "binary-file": binary_file,
    "subdir-with-C": sub_with_flag,
    "subdir-as-cwd": sub_as_cwd,
    "unknown-working-tree-encoding": unknown_encoding,
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_run_and_accept(shape: str, tmp_path: Path, model) -> None:
    case = SHAPES[shape](tmp_path / "proj")
    settle(case.repo)
    before = user_state(case.repo)
    base_files = visible_files(case.repo)
    change = case.expected_change()
    new_path, new_content = case.new
    edit_path, old, new = case.edit
    server = model(
        [
            call("write_file", "I add the new file.", path=new_path, content=new_content),
            call("edit_file", "I update the old one.", path=edit_path, old=old, new=new),
            call("finish", summary="added and edited"),
        ]
    )
    where = case.cwd or case.repo

    result = nexus(where, "run", "add and edit", *case.args, "--json", "--base-url", server.url)

    assert result.code == 0, result.stderr
    out = result.json()
    assert out["status"] == "succeeded", out
    assert out["branch"] == f"nexus/{out['run_id']}"
    branch = out["branch"]
    # The run's base is exactly what the user sees (ignored and deleted files left out) ...
    assert tree_files(case.repo, out["base"]) == base_files
    # ... and its branch is that plus the change, and nothing else.
    for path, content in change.items():
        assert git_bytes(case.repo, "show", f"{branch}:{path}") == content
    assert tree_files(case.repo, branch) == {**base_files, **change}
    assert git_bytes(case.repo, "rev-parse", branch).decode().strip() == out["head"]

    during = user_state(case.repo)
    for key in ("files", "status", "ignored", "index", "head", "symref"):
        assert during[key] == before[key], key
    assert during["branches"] == before["branches"] + f"refs/heads/{branch}\n".encode()

    accepted = nexus(where, "accept", out["run_id"], *case.args)

    assert accepted.code == 0, accepted.stderr
    after = user_state(case.repo)
    assert after["files"] == {**before["files"], **change}
    for key in ("index", "head", "symref"):
        assert after[key] == before[key], key


def test_a_file_git_cannot_convert_does_not_stop_step_commits(tmp_path: Path, model) -> None:
    """A step that only touches the file (as a build or a checkout does) makes git re-hash
    it; the step's own change must still be committed."""
    case = unknown_encoding(tmp_path / "proj")
    server = model(
        [
            call("run_command", command="touch tests/wrongenc.inc && echo 'w = 2' > added.py"),
            call("finish", summary="added"),
        ]
    )

    result = nexus(case.repo, "run", "add a module", "--json", "--base-url", server.url)

    assert result.code == 0, result.stderr
    out = result.json()
    assert out["status"] == "succeeded", out
    assert git_bytes(case.repo, "show", f"{out['branch']}:added.py") == b"w = 2\n"
    assert "could not be committed" not in result.stderr
