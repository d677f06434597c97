"""The project context an agent starts with: real repositories, snapshots and worktrees."""

from __future__ import annotations

import os
from pathlib import Path

from helpers_git import commit_all, make_repo, run, write

from nexus_ls.agent.starting_context import starting_context
from nexus_ls.sandbox.commits import worktree_env
from nexus_ls.sandbox.repo import open_workspace
from nexus_ls.sandbox.snapshot import take_snapshot
from nexus_ls.sandbox.worktree import create_worktree


def run_worktree(repo: Path, run_id: str = "r1") -> tuple[Path, dict[str, str]]:
    """What NEXUS does before a run: snapshot, then the run's worktree on that snapshot."""
    ws = open_workspace(repo)
    worktree = create_worktree(ws, run_id, take_snapshot(ws).sha)
    git_dir = Path(run(worktree, "rev-parse", "--absolute-git-dir"))
    return worktree, worktree_env(worktree, git_dir)


def short(repo: Path, rev: str) -> str:
    return run(repo, "rev-parse", "--short", rev)


def test_snapshot_is_explained_with_the_users_commit_and_changed_files(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"calc.py": "x = 1\n", "old.txt": "old\n"})
    write(repo, "calc.py", "x = 2\n")
    write(repo, "new.txt", "new\n")
    (repo / "old.txt").unlink()
    worktree, env = run_worktree(repo)

    text = starting_context(worktree, git_env=env)

    first = text.splitlines()[0]
    assert first == (
        f"Base commit: HEAD ({short(worktree, 'HEAD')}) is NEXUS's snapshot of the user's "
        f"uncommitted changes; the user's last commit is HEAD~1 ({short(repo, 'main')} 'initial')."
    )
    assert "  M calc.py\n" in text
    assert "  A new.txt\n" in text
    assert "  D old.txt\n" in text
    assert "The user's branch: main." in text
    assert "nexus/r1" not in text
    assert (
        f"Recent commits of the user's branch (newest first):\n  {short(repo, 'main')} initial"
        in text
    )
    assert text.index("Base commit:") < text.index("Tests:") < text.index("Tools:")


def test_a_clean_snapshot_and_a_plain_commit_both_say_clean(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    write(repo, "b.txt", "b\n")
    second = commit_all(repo, "second")
    worktree, env = run_worktree(repo)

    snap = starting_context(worktree, git_env=env)
    assert "snapshot of the user's working tree" in snap
    assert "The working tree was clean when the run started." in snap
    assert "Files it changed" not in snap
    assert f"  {second[:7]}" in snap and " initial" in snap

    plain = starting_context(repo)
    assert plain.splitlines()[0] == (
        f"Base commit: HEAD ({short(repo, 'HEAD')} 'second') is the user's last commit; "
        "the working tree was clean when the run started."
    )
    assert "snapshot" not in plain
    assert "The user's branch: main." in plain


def test_git_env_is_used_even_when_the_worktrees_git_file_is_rewritten(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    write(repo, "a.txt", "changed\n")
    worktree, env = run_worktree(repo)
    make_repo(tmp_path / "decoy", {"d.txt": "d\n"})
    run(tmp_path / "decoy", "commit", "--quiet", "--amend", "-m", "decoy commit")
    (worktree / ".git").write_text(f"gitdir: {tmp_path / 'decoy' / '.git'}\n")

    text = starting_context(worktree, git_env=env)

    assert "NEXUS's snapshot of the user's uncommitted changes" in text
    assert "  M a.txt" in text
    assert "decoy" not in text


def test_the_test_command_is_detected_for_a_pytest_project(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"pyproject.toml": "[project]\nname = 'x'\n"})
    assert "-m pytest -q` (detected" in starting_context(repo)

    bare = make_repo(tmp_path / "bare", {"notes.txt": "hi\n"})
    assert "Tests: no test command detected" in starting_context(bare)


def test_tools_name_python3_and_what_is_on_path(tmp_path: Path, monkeypatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("git", "rg"):
        tool = bin_dir / name
        tool.write_text("#!/bin/sh\n")
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    text = starting_context(tmp_path, token_budget=500)
    assert (
        "Tools: python3 is not on PATH; on PATH: git, rg; "
        "not on PATH: node, npm, cargo, go, make, pytest, ruff." in text
    )


def test_agents_md_is_included_and_symlinks_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "secret.md"
    outside.write_text("TOP SECRET\n")
    repo = make_repo(tmp_path / "repo", {"AGENTS.md": "Always run ruff before committing.\n"})
    text = starting_context(repo)
    assert "AGENTS.md (the project's instructions for agents):\n" in text
    assert "Always run ruff before committing." in text

    linked = make_repo(tmp_path / "linked", {"x.txt": "x\n"})
    os.symlink(outside, linked / "CONVENTIONS.md")
    os.symlink(outside, linked / "README.md")
    text = starting_context(linked)
    assert "TOP SECRET" not in text
    assert "CONVENTIONS.md (the project" not in text
    assert "README.md (first lines)" not in text
    assert "Repository map (3 files):\n  CONVENTIONS.md (" in text  # the link, not its target


def test_long_agents_md_is_capped(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"AGENTS.md": "rule\n" * 5000})
    text = starting_context(repo, token_budget=100_000)
    assert text.count("rule") == 600  # 3000 bytes of it
    assert "\n[... AGENTS.md goes on; read it for the rest]" in text


def test_python_top_level_names_and_the_readme_are_in_the_map(tmp_path: Path) -> None:
    source = (
        "import os\n\nclass Parser:\n    def inner(self):\n        pass\n\n"
        "def parse(text, *rest, strict=False, **options):\n    pass\n\n"
        "async def fetch(url, /, timeout):\n    pass\n"
    )
    repo = make_repo(
        tmp_path / "repo",
        {
            "pkg/parse.py": source,
            "README.md": "# Parser\n\nParses things.\n",
            "data.bin": "x" * 2048,
        },
    )
    text = starting_context(repo)
    assert "README.md (first lines):\n  # Parser\n\n  Parses things.\n" in text
    assert (
        f"  pkg/parse.py ({len(source)} B): class Parser, "
        "def parse(text, *rest, strict, **options), def fetch(url, timeout)\n" in text + "\n"
    )
    assert "  data.bin (2.0 KB)" in text
    assert "inner" not in text


def test_broken_python_and_odd_bytes_do_not_break_it(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {
            "broken.py": "def oops(:\n",
            "nul.py": b"x = 1\0\n",
            "latin.py": b"s = '\xe9'\n",
            "deep.py": "x = " + "(" * 5000 + ")" * 5000 + "\n",
            "good.py": "def fine():\n    pass\n",
            os.fsdecode(b"caf\xe9.txt"): "x\n",
        },
    )
    write(repo, os.fsdecode(b"\xffnew.txt"), "y\n")
    worktree, env = run_worktree(repo)
    text = starting_context(worktree, git_env=env)
    assert "  A \ufffdnew.txt" in text
    assert "  broken.py (11 B)\n" in text
    assert "  good.py (21 B): def fine()" in text
    # project_files cannot name a non-UTF-8 path, so the map leaves it out
    assert "Repository map (5 files):" in text
    text.encode("utf-8")  # no lone surrogates reach the model


def test_the_budget_is_kept_and_the_base_commit_survives(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"AGENTS.md": "Rules.\n" * 600, "setup.cfg": ""})
    for i in range(1500):
        write(repo, f"src/pkg{i % 30}/sub{i % 7}/mod{i}.py", f"def f{i}(a, b):\n    pass\n")
    worktree, env = run_worktree(repo)

    for budget in (2000, 500, 60, 30):
        text = starting_context(worktree, git_env=env, token_budget=budget)
        assert len(text) <= budget * 4
        assert "NEXUS's snapshot of the user's uncommitted changes" in text
    roomy = starting_context(worktree, git_env=env, token_budget=6000)
    status = roomy[: roomy.index("The user's branch")]
    assert "  src/pkg0/ (50 files)\n  src/pkg1/ (50 files)\n" in status  # by folder
    assert "/mod" not in status
    assert "Repository map (1502 files):\n  AGENTS.md (4.1 KB)\n  setup.cfg (0 B)\n" in roomy
    assert "  src/pkg29/ (50 files)" in roomy
    assert starting_context(worktree, git_env=env, token_budget=0) == ""


def test_a_folder_that_is_not_a_git_repository_still_gets_context(tmp_path: Path) -> None:
    write(tmp_path, "tests/test_x.py", "def test_x():\n    pass\n")
    write(tmp_path, "README", "Plain folder.\n")
    text = starting_context(tmp_path / ".", git_env={"GIT_DIR": str(tmp_path / "nope")})
    assert "Base commit:" not in text
    assert text.startswith("Tests: run them with `")
    assert "README (first lines):\n  Plain folder." in text
    assert "  tests/test_x.py (23 B): def test_x()" in text
    assert starting_context(tmp_path / "missing").startswith("Tests: no test command")


def test_the_map_gets_coarser_rather_than_cut(tmp_path: Path) -> None:
    files = {f"dir{d}/module_number_{f}.txt": "x\n" for d in range(10) for f in range(10)}
    repo = make_repo(tmp_path / "repo", files)

    full = starting_context(repo, token_budget=5000)
    assert "  dir3/module_number_7.txt (2 B)" in full
    assert "dir3/ (" not in full

    small = starting_context(repo, token_budget=600)
    assert len(small) <= 2400
    assert "Repository map (100 files):\n  dir0/ (10 files)\n" in small
    assert "  dir9/ (10 files)" in small
    assert "cut to fit" not in small
