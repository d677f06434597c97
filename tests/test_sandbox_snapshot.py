"""Snapshots of the user's state, in every repository shape, leave the user's repo as it was."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers_git import (
    commit_all,
    disk_files,
    make_repo,
    repo_state,
    run,
    run_bytes,
    tree_files,
    tree_modes,
    write,
)

from nexus_ls.errors import NexusError
from nexus_ls.sandbox import open_workspace
from nexus_ls.sandbox.snapshot import snapshot, take_snapshot


def parents(root: Path, sha: str) -> list[str]:
    return run(root, "rev-list", "--parents", "-n", "1", sha).split()[1:]


def test_no_commits_yet_with_staged_and_untracked(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "new")
    write(root, "staged.txt", "staged\n")
    write(root, "untracked/x.txt", "x\n")
    write(root, ".gitignore", "*.log\n")
    write(root, "debug.log", "noise\n")
    run(root, "add", "staged.txt")
    before = repo_state(root)
    sha = snapshot(open_workspace(root))
    assert parents(root, sha) == []
    assert tree_files(root, sha) == {
        "staged.txt": b"staged\n",
        "untracked/x.txt": b"x\n",
        ".gitignore": b"*.log\n",
    }
    assert repo_state(root) == before
    assert run(root, "log", "-1", "--format=%an|%s", sha) == (
        "NEXUS|nexus: snapshot of the working tree"
    )


def test_no_commits_and_no_index_file_at_all(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "new")
    write(root, "only.txt", "only\n")
    before = repo_state(root)
    assert before.index is None
    sha = snapshot(open_workspace(root))
    assert tree_files(root, sha) == {"only.txt": b"only\n"}
    assert repo_state(root) == before


def test_dirty_tree_every_kind_of_change(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path / "proj",
        {
            "staged.txt": "v1\n",
            "unstaged.txt": "v1\n",
            "both.txt": "v1\n",
            "deleted.txt": "gone soon\n",
            "removed/by_git_rm.txt": "gone soon\n",
            "same.txt": "same\n",
            ".gitignore": "*.log\nbuild/\n",
        },
    )
    head = run(root, "rev-parse", "HEAD")
    write(root, "staged.txt", "v2 staged\n")
    run(root, "add", "staged.txt")
    write(root, "unstaged.txt", "v2 unstaged\n")
    write(root, "both.txt", "v2 staged\n")
    run(root, "add", "both.txt")
    write(root, "both.txt", "v3 on disk\n")
    (root / "deleted.txt").unlink()
    run(root, "rm", "--quiet", "removed/by_git_rm.txt")
    write(root, "new.txt", "new\n")
    write(root, "newdir/deep/x.txt", "deep\n")
    write(root, "app.log", "ignored\n")
    write(root, "build/out.o", b"\x7fELF")
    write(root, "stash-me.txt", "will be stashed\n")
    run(root, "add", "stash-me.txt")
    run(root, "stash", "push", "--quiet", "--", "stash-me.txt")
    before = repo_state(root)

    sha = snapshot(open_workspace(root))

    assert parents(root, sha) == [head]
    expected = {k: v for k, v in disk_files(root).items() if not k.endswith((".log", ".o"))}
    assert tree_files(root, sha) == expected
    assert tree_files(root, sha)["both.txt"] == b"v3 on disk\n"
    assert "deleted.txt" not in expected and "removed/by_git_rm.txt" not in expected
    assert repo_state(root) == before


def test_detached_head(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj", {"a.txt": "one\n"})
    first = run(root, "rev-parse", "HEAD")
    write(root, "a.txt", "two\n")
    commit_all(root, "second")
    run(root, "checkout", "--quiet", "--detach", first)
    write(root, "a.txt", "dirty on detached\n")
    before = repo_state(root)
    sha = snapshot(open_workspace(root))
    assert parents(root, sha) == [first]
    assert tree_files(root, sha) == {"a.txt": b"dirty on detached\n"}
    assert repo_state(root) == before
    assert run(root, "rev-parse", "--abbrev-ref", "HEAD") == "HEAD"


def test_spaces_and_non_ascii_names(tmp_path: Path) -> None:
    names = {
        "dir with space/file name.txt": "spaces\n",
        "ünïcödé.txt": "accents\n",
        "日本語/ファイル.md": "kanji\n",
        'quote"and\ttab.txt': "odd\n",
    }
    root = make_repo(tmp_path / "proj", dict(list(names.items())[:2]))
    for rel, content in list(names.items())[2:]:
        write(root, rel, content)
    write(root, "ünïcödé.txt", "accents changed\n")
    before = repo_state(root)
    sha = snapshot(open_workspace(root))
    files = tree_files(root, sha)
    assert files == {
        **{k: v.encode() for k, v in names.items()},
        "ünïcödé.txt": b"accents changed\n",
    }
    assert repo_state(root) == before


def test_binary_exec_bit_and_symlink(tmp_path: Path) -> None:
    blob = bytes(range(256)) * 40
    root = make_repo(tmp_path / "proj", {"data.bin": blob, "run.sh": "#!/bin/sh\n"})
    write(root, "data.bin", blob[::-1] + b"\0\0")
    os.chmod(root / "run.sh", 0o755)
    os.symlink("data.bin", root / "link")
    before = repo_state(root)
    sha = snapshot(open_workspace(root))
    assert tree_files(root, sha)["data.bin"] == blob[::-1] + b"\0\0"
    modes = tree_modes(root, sha)
    assert modes == {"data.bin": "100644", "run.sh": "100755", "link": "120000"}
    assert tree_files(root, sha)["link"] == b"data.bin"
    assert repo_state(root) == before


def test_opened_from_a_subdirectory(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj", {"top.txt": "top\n", "sub/deeper/s.txt": "s\n"})
    write(root, "top.txt", "top changed\n")
    write(root, "sub/new.txt", "new\n")
    before = repo_state(root)
    sha = snapshot(open_workspace(root / "sub" / "deeper"))
    assert tree_files(root, sha) == {
        "top.txt": b"top changed\n",
        "sub/deeper/s.txt": b"s\n",
        "sub/new.txt": b"new\n",
    }
    assert repo_state(root) == before


def test_explicit_parent_and_message(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj", {"a.txt": "1\n"})
    first = run(root, "rev-parse", "HEAD")
    write(root, "a.txt", "2\n")
    commit_all(root, "second")
    sha = snapshot(open_workspace(root), parent=first, message="custom")
    assert parents(root, sha) == [first]
    assert run(root, "log", "-1", "--format=%s", sha) == "custom"
    assert tree_files(root, sha) == {"a.txt": b"2\n"}


def test_clean_tree_snapshot_has_heads_tree(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj", {"a.txt": "1\n"})
    sha = snapshot(open_workspace(root))
    assert run(root, "rev-parse", f"{sha}^{{tree}}") == run(root, "rev-parse", "HEAD^{tree}")


def test_users_checkout_is_a_linked_worktree(tmp_path: Path) -> None:
    main = make_repo(tmp_path / "main", {"a.txt": "main\n"})
    run(main, "worktree", "add", "--quiet", "-b", "feature", str(tmp_path / "feature"))
    feature = tmp_path / "feature"
    write(feature, "a.txt", "feature work\n")
    write(feature, "b.txt", "staged in feature\n")
    run(feature, "add", "b.txt")
    before_main, before_feature = repo_state(main), repo_state(feature)
    sha = snapshot(open_workspace(feature))
    assert tree_files(main, sha) == {"a.txt": b"feature work\n", "b.txt": b"staged in feature\n"}
    assert repo_state(main) == before_main
    assert repo_state(feature) == before_feature


def test_tree_is_what_git_add_all_makes_of_a_copy(tmp_path: Path) -> None:
    """Shapes `git status` names awkwardly: a file become a folder and a folder become a
    file, a nested repository, a staged rename, line endings an attribute converts."""
    root = make_repo(
        tmp_path / "proj",
        {"was_file": "f\n", "was_dir/a": "a\n", "was_dir/b": "b\n", "old.txt": "moved\n"},
    )
    (root / "was_file").unlink()
    write(root, "was_file/inside.txt", "now a folder\n")
    shutil.rmtree(root / "was_dir")
    write(root, "was_dir", "now a file\n")
    run(root, "mv", "old.txt", "new.txt")
    write(root, ".gitattributes", "*.txt text eol=lf\n")
    write(root, "crlf.txt", b"one\r\ntwo\r\n")
    nested = make_repo(root / "nested", {"n.txt": "n\n"})
    before = repo_state(root)

    sha = snapshot(open_workspace(root))

    assert repo_state(root) == before
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, symlinks=True)
    run(copy, "add", "-A")
    assert run(root, "rev-parse", f"{sha}^{{tree}}") == run(copy, "write-tree")
    assert run_bytes(root, "show", f"{sha}:crlf.txt") == b"one\ntwo\n"
    assert tree_modes(root, sha)["nested"] == "160000"  # a gitlink, as `add` makes it
    assert nested.is_dir()


def test_sparse_checkout_keeps_the_entries_outside_it(tmp_path: Path) -> None:
    """Files outside a sparse checkout are not on disk but are the user's: the snapshot
    keeps them as the index has them, with what the user staged there."""
    root = make_repo(tmp_path / "proj", {"in/a": "a\n", "out/b": "b\n"})
    write(root, "out/b", "b2\n")
    write(root, "out/new", "n\n")
    commit_all(root, "second")
    run(root, "sparse-checkout", "set", "in")
    run(root, "reset", "--quiet", "--soft", "HEAD~1")  # out/ staged, and not on disk
    write(root, "in/a", "a2\n")
    assert not (root / "out").exists()
    sha = snapshot(open_workspace(root))
    assert tree_files(root, sha) == {"in/a": b"a2\n", "out/b": b"b2\n", "out/new": b"n\n"}


def test_a_rename_git_status_sees_in_the_working_tree(tmp_path: Path) -> None:
    """`git add -N` then a move: status names the rename in its second column, with the
    source after it; taking that source for an entry of its own once staged the wrong
    path (here an ignored file holding a secret)."""
    root = make_repo(tmp_path / "proj", {"abc.env": "l1\nl2\nl3\nl4\n", ".gitignore": "/.env\n"})
    write(root, ".env", "SECRET=1\n")
    (root / "abc.env").rename(root / "renamed.env")
    run(root, "add", "-N", "renamed.env")
    assert run(root, "status", "--porcelain") == " R abc.env -> renamed.env"
    snapped = take_snapshot(open_workspace(root), sensitive=(".env",))
    assert tree_files(root, snapped.sha) == {
        "renamed.env": b"l1\nl2\nl3\nl4\n",
        ".gitignore": b"/.env\n",
    }


def test_a_tracked_file_become_a_repository_is_its_gitlink(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj", {"sub": "a file first\n", "a.txt": "a\n"})
    (root / "sub").unlink()
    make_repo(root / "sub", {"x.txt": "x\n"})
    sha = snapshot(open_workspace(root))
    assert tree_modes(root, sha) == {"a.txt": "100644", "sub": "160000"}


def test_a_path_git_refuses_is_said_not_dropped(tmp_path: Path) -> None:
    """`update-index` only warns of a name git will not have (and exits 0): the snapshot
    must not leave the file out without a word."""
    root = make_repo(tmp_path / "proj", {"a.txt": "a\n"})
    write(root, "GIT~1", "a name Windows would take for .git\n")
    with pytest.raises(NexusError, match="invalid path 'GIT~1'"):
        snapshot(open_workspace(root))


def test_a_folder_become_a_link_keeps_the_tracked_files_ignore_rules_match(
    tmp_path: Path,
) -> None:
    """A tracked folder replaced by a link to another: git holds nothing behind a link,
    and a tracked file that `.gitignore` matches is still the user's."""
    root = make_repo(tmp_path / "proj", {"keep.log": "tracked\n", "d/file": "in\n"})
    write(root, ".gitignore", "*.log\n")
    commit_all(root, "ignore logs, keep the one tracked")
    write(root, "other/file", "out\n")
    shutil.rmtree(root / "d")
    os.symlink("other", root / "d")
    sha = snapshot(open_workspace(root))
    assert tree_modes(root, sha) == {
        ".gitignore": "100644",
        "keep.log": "100644",
        "d": "120000",
        "other/file": "100644",
    }


def test_a_change_in_the_second_the_index_was_written_is_seen(tmp_path: Path) -> None:
    """Git checks the content of a file whose time is not older than the index's ("racily
    clean"); the snapshot's copy of the index must keep the index's time for that."""
    root = make_repo(tmp_path / "proj", {"f": "aaaa\n"})
    write(root, "f", "bbbb\n")
    os.utime(root / "f", (1.7e9 + 0.1,) * 2)
    run(root, "add", "f")
    write(root, "f", "dddd\n")  # same size, same second as the index
    os.utime(root / "f", (1.7e9 + 0.9,) * 2)
    os.utime(root / ".git" / "index", (1.7e9 + 0.5,) * 2)
    sha = snapshot(open_workspace(root))
    assert tree_files(root, sha) == {"f": b"dddd\n"}
