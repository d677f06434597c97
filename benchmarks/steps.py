"""What one agent step's git work costs, by repository size: commit_step, commit_paths, raw git.

Run from the repository root: `python -m benchmarks.steps [--sizes 100,10000,50000]
[--repeats N]`. For each size it builds a committed repository of that many small files
in a temp folder and times, as median milliseconds, the git work of one step: a write
step (one file changed, or one new file in a new folder), and a step that changed
nothing. Beside NEXUS's functions, the raw git a step could be made of. The file writes
are not timed, only the commit. Git runs as in a run: the repository's git dir named
through GIT_DIR and GIT_WORK_TREE.

The git processes per step are counted in a separate, untimed pass, through a `git`
shim put first on PATH that logs each start and execs the real git.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.table import print_table
from nexus_ls.sandbox.commits import (
    CommitGuard,
    commit_paths,
    commit_step,
    nested_repositories,
    worktree_env,
)
from nexus_ls.sandbox.repo import NEXUS_IDENTITY, SAFE_CONFIG, changed_files

HEADER = ["files", "step", "how", "median ms", "git processes", "note"]
PER_DIR = 100


def make_repo(root: Path, files: int) -> None:
    """A committed tree of `files` small Python files, `PER_DIR` to a folder."""
    for i in range(files):
        folder = root / f"pkg{i // PER_DIR:04d}"
        if i % PER_DIR == 0:
            folder.mkdir(parents=True)
        fd = os.open(folder / f"mod{i % PER_DIR:03d}.py", os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, f"# module {i}\nVALUE = {i}\n".encode())
        os.close(fd)
    env = {**os.environ, **NEXUS_IDENTITY}
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-q", "-m", "initial")):
        subprocess.run(["git", *args], cwd=root, env=env, check=True)
    subprocess.run(["git", "status", "-s"], cwd=root, check=True, capture_output=True)


Prepare = Callable[[int], object]
Action = Callable[[int], object]


class Bench:
    def __init__(self, root: Path, repeats: int, shim: Path) -> None:
        self.root, self.repeats, self.shim = root, repeats, shim
        self.git_dir = root / ".git"
        self.env = {**NEXUS_IDENTITY, **worktree_env(root, self.git_dir)}
        self.guard = CommitGuard()
        self.step = 0
        self.counter = shim / "count"

    def measure(self, cases: list[tuple[Prepare, Action]]) -> list[tuple[float, int]]:
        """Median ms of each case's `action(i)` after an untimed `prepare(i)`, the cases
        taken in turn within each repeat (so a busy moment hits them alike); then the git
        processes of one more action of each, through the shim."""
        times: list[list[float]] = [[] for _ in cases]
        for i in range(self.repeats):
            for (prepare, action), spent in zip(cases, times, strict=True):
                prepare(i)
                start = time.perf_counter()
                action(i)
                spent.append((time.perf_counter() - start) * 1000)
        counts = []
        path = os.environ["PATH"]
        for prepare, action in cases:
            prepare(self.repeats)
            self.counter.write_text("")
            os.environ["PATH"] = f"{self.shim}{os.pathsep}{path}"
            try:
                action(self.repeats)
            finally:
                os.environ["PATH"] = path
            counts.append(len(self.counter.read_text().splitlines()))
        return [(statistics.median(t), n) for t, n in zip(times, counts, strict=True)]

    def raw(self, *args: str, stdin: bytes | None = None) -> str:
        done = subprocess.run(["git", *SAFE_CONFIG, *args], cwd=self.root,
                              env={**os.environ, **self.env}, input=stdin,
                              capture_output=True, check=True)  # fmt: skip
        return done.stdout.decode().strip()

    def next_step(self) -> int:
        self.step += 1
        return self.step

    # What a step can be.

    def commit_step(self, _i: int) -> object:
        return commit_step(self.root, "write_file", "a step", "", "bench", self.next_step(),
                           self.git_dir, self.guard)  # fmt: skip

    def commit_paths(self, paths: list[str]) -> Action:
        def action(_i: int) -> object:
            return commit_paths(self.root, paths, "write_file", "a step", "", "bench",
                                self.next_step(), self.git_dir, self.guard)  # fmt: skip

        return action

    def old_no_change(self, _i: int) -> object:
        """commit_step's work before it returned early with nothing to commit."""
        env = worktree_env(self.root, self.git_dir)
        return nested_repositories(self.root, env, changed_files(self.root, env))

    def add_all_commit(self, _i: int) -> None:
        self.raw("add", "-A")
        self.raw("commit", "-q", "-m", "raw")

    def add_path_commit(self, path: str) -> Action:
        def action(_i: int) -> None:
            self.raw("add", "--", path)
            self.raw("commit", "-q", "-m", "raw")

        return action

    def plumbing(self, path: str) -> Action:
        def action(_i: int) -> None:
            blob = self.raw("hash-object", "-w", "--", path)
            self.raw("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}")
            tree = self.raw("write-tree")
            commit = self.raw("commit-tree", "-p", "HEAD", tree, stdin=b"raw\n")
            self.raw("update-ref", "HEAD", commit)

        return action

    def status(self, *config: str) -> Action:
        def action(_i: int) -> None:
            self.raw(*config, "status", "--porcelain", "-z", "--untracked-files=all")

        return action


def rows_for(root: Path, files: int, repeats: int, shim: Path) -> list[list[object]]:
    b = Bench(root, repeats, shim)
    target = "pkg0000/mod000.py"

    def modify(i: int) -> None:
        (root / target).write_text(f"# changed {time.perf_counter_ns()} {i}\n")

    counter = iter(range(1_000_000))
    new_names: list[str] = []

    def add_new(_i: int) -> None:
        name = f"new{next(counter)}/f.py"
        (root / name).parent.mkdir()
        (root / name).write_text("x = 1\n")
        new_names[:] = [name]

    def nothing(_i: int) -> None:
        pass

    def same_bytes(_i: int) -> None:
        (root / target).write_bytes((root / target).read_bytes())

    def commit_new(i: int) -> object:
        return b.commit_paths(list(new_names))(i)

    groups: list[list[tuple[str, str, Prepare, Action, str]]] = [
        [
            ("write, 1 file", "commit_step", modify, b.commit_step, "status, add, checks, commit"),
            ("write, 1 file", "commit_paths", modify, b.commit_paths([target]), "the fast path"),
            ("write, 1 file", "git add -A && git commit -q", modify, b.add_all_commit, "raw"),
            ("write, 1 file", "git add -- path && git commit -q", modify,
             b.add_path_commit(target), "raw"),
            ("write, 1 file", "hash-object, update-index, write-tree, commit-tree, update-ref",
             modify, b.plumbing(target), "raw plumbing, no checks"),
        ],
        [
            ("write, new folder", "commit_step", add_new, b.commit_step, ""),
            ("write, new folder", "commit_paths", add_new, commit_new, ""),
        ],
        [
            ("no change", "commit_step before", nothing, b.old_no_change, "status + nested scan"),
            ("no change", "commit_step", nothing, b.commit_step, "status only"),
            ("no change", "commit_paths (same bytes)", same_bytes, b.commit_paths([target]), ""),
            ("no change", "git status -uall", nothing, b.status(), "raw"),
        ],
    ]  # fmt: skip
    rows: list[list[object]] = []
    for group in groups:
        results = b.measure([(prepare, action) for _, _, prepare, action, _ in group])
        for (step, how, _, _, note), (ms, processes) in zip(group, results, strict=True):
            rows.append([files, step, how, ms, processes, note])
    # Last, and undone after: once in the index, git would use the cache in every status.
    cached = b.status("-c", "core.untrackedCache=true")
    cached(0)  # fill it
    [(ms, processes)] = b.measure([(nothing, cached)])
    b.raw("update-index", "--no-untracked-cache")
    rows.append([files, "no change", "git status -uall, untracked cache", ms, processes,
                 "raw; not used by NEXUS"])  # fmt: skip
    return rows


def make_shim(folder: Path) -> Path:
    real = shutil.which("git")
    if real is None:
        raise SystemExit("git not found on PATH")
    folder.mkdir()
    script = folder / "git"
    script.write_text(f'#!/bin/sh\necho "$1" >> "{folder / "count"}"\nexec "{real}" "$@"\n')
    script.chmod(0o755)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,10000,50000")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"median of {args.repeats}; git processes counted in one more, untimed step\n")
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="nexus-steps-") as tmp:
        shim = make_shim(Path(tmp) / "shim")
        for files in sizes:
            root = Path(tmp) / f"repo{files}"
            root.mkdir()
            make_repo(root, files)
            rows.extend(rows_for(root, files, args.repeats, shim))
            shutil.rmtree(root)
    print_table([HEADER, *rows])


if __name__ == "__main__":
    main()
