"""Step commits: message format, trailers git can parse, identity, no empty commits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers_git import make_repo, run, tree_files, tree_modes, write

from nexus_ls.sandbox import (
    changed_files,
    commit_step,
    commits,
    create_worktree,
    format_message,
    open_workspace,
)
from nexus_ls.sandbox.commits import CommitGuard, StepCommit, commit_paths
from nexus_ls.sandbox.repo import run_git
from nexus_ls.sandbox.snapshot import snapshot


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "proj", {"a.txt": "a\n", "old.txt": "old\n", "keep.txt": "k\n"})
    ws = open_workspace(root)
    return create_worktree(ws, "r1", snapshot(ws))


def test_format_message_full() -> None:
    message = format_message("edit_file", "Fix the off-by-one", "Loop ran once too often.", "r1", 3)
    assert message == (
        "Fix the off-by-one\n\nLoop ran once too often.\n\nNexus-Run: r1\nNexus-Step: 3\n"
    )


def test_format_message_without_rationale() -> None:
    assert format_message("write_file", "Add notes", "  \n", "r1", 1) == (
        "Add notes\n\nNexus-Run: r1\nNexus-Step: 1\n"
    )
    # Only a step that says nothing of itself is named after its tool.
    assert format_message("write_file", " ", "", "r1", 1).splitlines()[0] == "write_file"


def test_format_message_summary_is_one_short_line() -> None:
    message = format_message("run_command", "first line\nsecond line", "why", "r1", 2)
    assert message.splitlines()[0] == "first line"
    summary = format_message("write_file", "x" * 200, "", "r1", 1).splitlines()[0]
    assert len(summary) <= 72 and summary.endswith("...")


def test_commit_step_message_identity_and_trailers(worktree: Path) -> None:
    base = run(worktree, "rev-parse", "HEAD")
    write(worktree, "a.txt", "changed\n")
    write(worktree, "dir/new.txt", "new\n")
    sha = commit_step(worktree, "write_file", "Change a", "Because.", "r1", 1).sha
    assert sha == run(worktree, "rev-parse", "HEAD")
    assert run(worktree, "rev-parse", f"{sha}^") == base
    assert run(worktree, "log", "-1", "--format=%an <%ae>|%cn <%ce>", sha) == (
        "NEXUS <nexus@localhost>|NEXUS <nexus@localhost>"
    )
    assert run(worktree, "log", "-1", "--format=%B", sha) == (
        "Change a\n\nBecause.\n\nNexus-Run: r1\nNexus-Step: 1\n"
    )
    trailers = run(worktree, "log", "-1", "--format=%(trailers:only,unfold)", sha)
    assert trailers.splitlines() == ["Nexus-Run: r1", "Nexus-Step: 1"]
    assert run(worktree, "show", "--name-only", "--format=", sha).splitlines() == [
        "a.txt",
        "dir/new.txt",
    ]


def test_commit_step_records_deletions_and_renames(worktree: Path) -> None:
    (worktree / "old.txt").rename(worktree / "renamed.txt")
    (worktree / "keep.txt").unlink()
    sha = commit_step(worktree, "run_command", "mv and rm", "", "r1", 2).sha
    assert sha is not None
    names = run(worktree, "show", "--name-status", "--no-renames", "--format=", sha)
    assert sorted(names.splitlines()) == ["A\trenamed.txt", "D\tkeep.txt", "D\told.txt"]
    assert changed_files(worktree) == []


def test_commit_step_without_changes_is_a_no_op(worktree: Path) -> None:
    head = run(worktree, "rev-parse", "HEAD")
    assert commit_step(worktree, "read_file", "nothing", "", "r1", 1).sha is None
    assert run(worktree, "rev-parse", "HEAD") == head
    write(worktree, "a.txt", "a\n")  # rewritten with identical content
    assert commit_step(worktree, "write_file", "same bytes", "", "r1", 2).sha is None
    assert run(worktree, "rev-parse", "HEAD") == head


def test_changed_files_sees_every_kind_of_change(worktree: Path) -> None:
    assert changed_files(worktree) == []
    write(worktree, "a.txt", "modified\n")
    write(worktree, "deep/dir/new file.txt", "untracked\n")
    write(worktree, "ünï.txt", "non-ascii\n")
    (worktree / "keep.txt").unlink()
    run(worktree, "mv", "old.txt", "moved.txt")
    assert changed_files(worktree) == sorted(
        ["a.txt", "deep/dir/new file.txt", "ünï.txt", "keep.txt", "old.txt", "moved.txt"]
    )


# --- commit_paths: the fast path for steps whose paths are known ---------------------------

BASE_FILES: dict[str, bytes | str] = {
    "a.txt": "a\n",
    "old.txt": "old\n",
    "keep.txt": "k\n",
    "run.sh": "#!/bin/sh\necho hi\n",
    "pkg/mod.py": "x = 1\n",
    "link": "",  # replaced by a symbolic link below
    "has_key.txt": "token sk-known-secret-0123456789\n",
    ".gitignore": "*.log\n",
    "crlf/.gitattributes": "*.txt text eol=lf\n",
}
SECRET = "sk-known-secret-0123456789"
GUARD = CommitGuard(size_limit=1000, secrets={"OPENAI_API_KEY": SECRET})


class Pair:
    """Two run worktrees of one snapshot: the same change is committed by `commit_step`
    in `slow` and by `commit_paths` in `fast`, and the results compared."""

    def __init__(self, tmp_path: Path) -> None:
        root = make_repo(tmp_path / "proj", BASE_FILES)
        (root / "link").unlink()
        (root / "link").symlink_to("a.txt")
        (root / "run.sh").chmod(0o755)
        run(root, "add", "-A")
        run(root, "commit", "-q", "-m", "link and mode")
        ws = open_workspace(root)
        base = snapshot(ws)
        self.slow, self.fast = create_worktree(ws, "slow", base), create_worktree(ws, "fast", base)
        self.base = base

    def git_dir(self, wt: Path) -> Path:
        return Path(run(wt, "rev-parse", "--absolute-git-dir"))

    def both(self, change: Callable[[Path], object]) -> None:
        for wt in (self.slow, self.fast):
            change(wt)

    def commit(
        self, paths: list[str], monkeypatch: pytest.MonkeyPatch, fallback: bool = False
    ) -> tuple[StepCommit, StepCommit]:
        slow = commit_step(self.slow, "write_file", "a step", "Why.", "r1", 1,
                           self.git_dir(self.slow), GUARD)  # fmt: skip
        with monkeypatch.context() as patch:
            if not fallback:  # the fast path must not scan the tree
                patch.setattr(commits, "changed_files", _no_scan)
            fast = commit_paths(self.fast, paths, "write_file", "a step", "Why.", "r1", 1,
                                self.git_dir(self.fast), GUARD)  # fmt: skip
        return slow, fast

    def assert_same(self, slow: StepCommit, fast: StepCommit) -> None:
        assert (slow.sha is None) == (fast.sha is None)
        assert slow.too_large == fast.too_large and slow.refused == fast.refused
        for what in ("HEAD^{tree}", "HEAD^"):
            assert run(self.slow, "rev-parse", what) == run(self.fast, "rev-parse", what), what
        fmt = "--format=%B|%an <%ae>|%cn <%ce>|%P"
        assert run(self.slow, "log", "-1", fmt) == run(self.fast, "log", "-1", fmt)
        assert run(self.slow, "log", "-g", "-1", "--format=%gs") == run(
            self.fast, "log", "-g", "-1", "--format=%gs"
        )
        # The index: what HEAD holds, its stat data fresh, as `git status` sees it.
        assert run(self.fast, "status", "--porcelain") == run(self.slow, "status", "--porcelain")
        assert run(self.fast, "diff-index", "--cached", "HEAD") == ""
        assert run(self.fast, "diff-files") == run(self.slow, "diff-files")
        if fast.files:  # set when commit_paths committed by itself
            shown = run(self.fast, "show", "-z", "--name-only", "--format=", "HEAD")
            assert fast.files == shown.strip("\0").split("\0")


def _no_scan(*_args: object, **_kwargs: object) -> list[str]:
    raise AssertionError("commit_paths scanned the worktree (git status)")


@pytest.fixture
def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Pair:
    # Both worktrees' commits at one moment: a step's commit id holds its time, and the
    # two are made one after the other, sometimes either side of a second's turn.
    for name in ("GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE"):
        monkeypatch.setenv(name, "2026-01-01T00:00:00Z")
    return Pair(tmp_path)


def _chmod_x(rel: str) -> Callable[[Path], object]:
    return lambda wt: (wt / rel).chmod(0o755)


CASES = {
    "modified": (lambda wt: write(wt, "a.txt", "changed\n"), ["a.txt"]),
    "new": (lambda wt: write(wt, "new.txt", "new\n"), ["new.txt"]),
    "deleted": (lambda wt: (wt / "old.txt").unlink(), ["old.txt"]),
    "new folder": (lambda wt: write(wt, "deep/er/n e w ü.py", "y = 2\n"), ["deep/er/n e w ü.py"]),
    "several": (
        lambda wt: (
            write(wt, "a.txt", "1\n"),
            write(wt, "pkg/b.py", "2\n"),
            (wt / "keep.txt").unlink(),
        ),
        ["pkg/b.py", "keep.txt", "a.txt", "./a.txt"],
    ),
    "executable kept": (lambda wt: write(wt, "run.sh", "#!/bin/sh\necho bye\n"), ["run.sh"]),
    "new executable": (
        lambda wt: (write(wt, "tool.sh", "#!/bin/sh\n"), _chmod_x("tool.sh")(wt)),
        ["tool.sh"],
    ),
    "odd name": (
        lambda wt: write(wt, "we:ird^{tree} @{1} .txt ", "o\n"),
        ["we:ird^{tree} @{1} .txt "],
    ),
    "mode only": (_chmod_x("a.txt"), ["a.txt"]),
    "not utf-8": (lambda wt: write(wt, "bin.dat", b"\xff\x00\xfe\n"), ["bin.dat"]),
    "new link": (lambda wt: (wt / "to-old").symlink_to("old.txt"), ["to-old"]),
    "changed link": (
        lambda wt: ((wt / "link").unlink(), (wt / "link").symlink_to("keep.txt")),
        ["link"],
    ),
    "link to a file": (
        lambda wt: ((wt / "link").unlink(), write(wt, "link", "now a file\n")),
        ["link"],
    ),
    "old secret, new line": (
        lambda wt: write(wt, "has_key.txt", f"token {SECRET}\nmore\n"),
        ["has_key.txt"],
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_commit_paths_makes_the_commit_commit_step_makes(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    change, paths = CASES[case]
    pair.both(change)
    # Content that holds a known secret goes to commit_step for the exact diff check.
    slow, fast = pair.commit(paths, monkeypatch, fallback=case == "old secret, new line")
    assert fast.sha is not None
    pair.assert_same(slow, fast)
    assert (
        commit_step(pair.fast, "run_command", "nothing", "", "r1", 2, pair.git_dir(pair.fast)).sha
        is None
    )


def test_commit_paths_keeps_modes_and_links(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    def change(wt: Path) -> None:
        write(wt, "run.sh", "#!/bin/sh\necho bye\n")
        write(wt, "tool.sh", "#!/bin/sh\n")
        (wt / "tool.sh").chmod(0o755)
        (wt / "to-old").symlink_to("old.txt")

    pair.both(change)
    _, fast = pair.commit(["run.sh", "tool.sh", "to-old"], monkeypatch)
    modes = tree_modes(pair.fast, "HEAD")
    assert (modes["run.sh"], modes["tool.sh"], modes["to-old"]) == ("100755", "100755", "120000")
    assert run(pair.fast, "cat-file", "blob", "HEAD:to-old") == "old.txt"


def test_commit_paths_leaves_out_a_file_over_the_limit_unhashed(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = b"b" * 1001
    pair.both(lambda wt: (write(wt, "big.bin", big), write(wt, "small.txt", "s\n")))
    slow, fast = pair.commit(["big.bin", "small.txt"], monkeypatch)
    assert fast.too_large == {"big.bin": 1001} and fast.sha is not None
    pair.assert_same(slow, fast)
    assert "big.bin" not in tree_files(pair.fast, "HEAD")
    blob = run(pair.fast, "hash-object", "--stdin", input=big)
    assert run_git(pair.fast, "cat-file", "-e", blob).status != 0  # never hashed into the store
    only_big = commit_paths(pair.fast, ["big.bin"], "write_file", "again", "", "r1", 2,
                            pair.git_dir(pair.fast), GUARD)  # fmt: skip
    assert only_big.sha is None and only_big.too_large == {"big.bin": 1001}


@pytest.mark.parametrize(
    "content",
    [
        f"KEY = '{SECRET}'\n",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n",
        "note\nPuTTY-User-Key-File-3: ssh-ed25519\n",
    ],
    ids=["known secret", "private key", "putty key"],
)
def test_commit_paths_commits_nothing_when_a_secret_is_added(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, content: str
) -> None:
    pair.both(lambda wt: (write(wt, "config.py", content), write(wt, "fine.txt", "ok\n")))
    slow, fast = pair.commit(["config.py", "fine.txt"], monkeypatch, fallback=True)
    assert fast.sha is None and fast.refused and fast.refused == slow.refused
    assert run(pair.fast, "rev-parse", "HEAD") == pair.base
    assert run(pair.fast, "diff-index", "--cached", "HEAD") == ""  # nothing left staged
    assert (pair.fast / "config.py").read_text() == content  # the change stays in the worktree
    pair.assert_same(slow, fast)


def test_commit_paths_without_a_change_makes_no_commit(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair.both(lambda wt: write(wt, "a.txt", "a\n"))  # the same bytes again
    slow, fast = pair.commit(["a.txt"], monkeypatch)
    assert slow.sha is None and fast.sha is None
    assert run(pair.fast, "rev-parse", "HEAD") == pair.base
    pair.assert_same(slow, fast)


def test_commit_paths_does_not_commit_an_ignored_new_file(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair.both(lambda wt: (write(wt, "out.log", "log\n"), write(wt, "a.txt", "new a\n")))
    slow, fast = pair.commit(["out.log", "a.txt"], monkeypatch, fallback=True)
    assert fast.sha is not None and "out.log" not in tree_files(pair.fast, "HEAD")
    pair.assert_same(slow, fast)


def test_commit_paths_leaves_out_a_nested_repository(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    def change(wt: Path) -> None:
        write(wt, "sub/f.txt", "inner\n")
        run(wt / "sub", "init", "-q")
        write(wt, "ok.txt", "ok\n")

    pair.both(change)
    slow, fast = pair.commit(["sub/f.txt", "ok.txt"], monkeypatch)
    assert fast.nested == ["sub"] == slow.nested
    assert sorted(tree_files(pair.fast, "HEAD")) == sorted(tree_files(pair.slow, "HEAD"))
    pair.assert_same(slow, fast)


def test_commit_paths_hands_a_blob_an_attribute_changes_to_commit_step(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair.both(lambda wt: write(wt, "crlf/w.txt", "one\r\ntwo\r\n"))
    slow, fast = pair.commit(["crlf/w.txt"], monkeypatch, fallback=True)
    assert run(pair.fast, "cat-file", "blob", "HEAD:crlf/w.txt") == "one\ntwo"
    pair.assert_same(slow, fast)


def test_commit_paths_hands_odd_paths_to_commit_step(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    def change(wt: Path) -> None:
        write(wt, "a.txt", "x\n")
        write(wt, "made/by/a/command.txt", "c\n")

    pair.both(change)
    # A folder, not a file: commit_step decides (and commits the whole folder).
    slow, fast = pair.commit(["a.txt", "made"], monkeypatch, fallback=True)
    pair.assert_same(slow, fast)
    # A link among the parents: git does not follow it; commit_step commits the link.
    pair.both(lambda wt: (wt / "lnk").symlink_to("pkg"))
    slow, fast = pair.commit(["lnk/mod.py"], monkeypatch, fallback=True)
    assert tree_modes(pair.fast, "HEAD")["lnk"] == "120000"
    pair.assert_same(slow, fast)
    for odd in (["../x"], ["/etc/passwd"], [".git/config"], ["a\nb"], ["lnk/mod.py"]):
        with monkeypatch.context() as patch:
            patch.setattr(commits, "changed_files", _no_scan)
            with pytest.raises(AssertionError, match="scanned"):
                commit_paths(pair.fast, odd, "write_file", "odd", "", "r1", 2)


def test_commit_paths_then_commit_step_agree_on_what_is_left(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair.both(lambda wt: (write(wt, "a.txt", "1\n"), write(wt, "big.bin", b"x" * 2000)))
    slow, fast = pair.commit(["a.txt", "big.bin"], monkeypatch)
    pair.assert_same(slow, fast)
    # A later run_command step: commit_step sees only what the guard left out.
    pair.both(lambda wt: write(wt, "cmd.txt", "from a command\n"))
    for wt in (pair.slow, pair.fast):
        later = commit_step(wt, "run_command", "cmd", "", "r1", 2, pair.git_dir(wt), GUARD)
        assert later.sha is not None and later.too_large == {"big.bin": 2000}
    assert run(pair.slow, "rev-parse", "HEAD^{tree}") == run(pair.fast, "rev-parse", "HEAD^{tree}")
    assert run(pair.fast, "status", "--porcelain") == "?? big.bin"


def test_commit_step_without_changes_looks_no_further(
    worktree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_walk(*_args: object, **_kwargs: object) -> list[str]:
        raise AssertionError("looked for nested repositories with nothing to commit")

    monkeypatch.setattr(commits, "nested_repositories", no_walk)
    assert commit_step(worktree, "run_command", "nothing", "", "r1", 1).sha is None


def test_tool_change_has_the_shape_of_commit_change(worktree: Path) -> None:
    write(worktree, "a.txt", "changed\n")
    sha = commit_step(worktree, "write_file", "Change a", "", "r1", 1).sha
    assert sha is not None
    from_git = commits.commit_change(worktree, sha)
    from_tool = commits.tool_change(sha, ["a.txt"], "--- a/a.txt\n+++ b/a.txt\n")
    assert from_tool.keys() == from_git.keys()
    assert (from_tool["commit"], from_tool["files"]) == (sha, from_git["files"])
    assert commits.tool_change(sha, [], "x" * (commits.DIFF_LIMIT + 1))["diff_truncated"]


def test_commit_paths_uses_the_run_git_dir_not_the_worktree_pointer(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A command can rewrite the worktree's `.git` file; the commit must still go to the
    run's own git dir, never to the repository the pointer names."""
    decoy = make_repo(tmp_path / "decoy", {"d.txt": "d\n"})
    decoy_head = run(decoy, "rev-parse", "HEAD")
    git_dir = pair.git_dir(pair.fast)
    (pair.fast / ".git").write_text(f"gitdir: {decoy / '.git'}\n")
    write(pair.fast, "a.txt", "to the run\n")
    with monkeypatch.context() as patch:
        patch.setattr(commits, "changed_files", _no_scan)
        sha = commit_paths(pair.fast, ["a.txt"], "write_file", "w", "", "r1", 1, git_dir).sha
    assert sha is not None and run(decoy, "rev-parse", "HEAD") == decoy_head
    assert run(decoy, "status", "--porcelain") == ""
    shown = run(pair.fast, f"--git-dir={git_dir}", "show", f"{sha}:a.txt")
    assert shown == "to the run"
