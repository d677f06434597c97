"""How much the sandbox costs next to the raw git commands it is built on.

Run from the repository root: `python -m benchmarks.sandbox [--files N] [--repeats N]`.
It builds a repository of N files in a temp folder, commits it, dirties about 1% of the
files and adds 50 untracked ones, then prints median seconds per operation.

`--growth 1000,10000,50000` prints instead how the costs a run meets grow with the
repository: its snapshot, a fresh worktree, one from the pool, and one step's commit.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.table import print_table
from nexus_ls.config import Limits, ModelSettings, RunSettings
from nexus_ls.run_sandbox import make_sandbox
from nexus_ls.sandbox import (
    NEXUS_IDENTITY,
    Workspace,
    create_worktree,
    open_workspace,
    remove_worktree,
    worktree_path,
)
from nexus_ls.sandbox.accept import accept
from nexus_ls.sandbox.commits import commit_step
from nexus_ls.sandbox.pool import POOL_ENV
from nexus_ls.sandbox.settings import SandboxSettings
from nexus_ls.sandbox.snapshot import snapshot

HEADER = ["operation", "median s", "raw git", "median s", "ratio (median of pairs)", "note"]


def make_repo(root: Path, files: int) -> None:
    """A committed tree of `files` small text files, then ~1% modified and 50 untracked."""
    per_dir = 100
    for i in range(files):
        path = root / f"pkg{i // per_dir:03d}" / f"mod{i % per_dir:03d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# module {i}\nVALUE = {i}\n\n\ndef f():\n    return VALUE\n")
    _git(root, "init", "--quiet", "--initial-branch=main")
    _git(root, "add", "-A")
    _git(root, "commit", "--quiet", "-m", "initial")
    for i in range(0, files, max(1, files // 100)):
        path = root / f"pkg{i // per_dir:03d}" / f"mod{i % per_dir:03d}.py"
        path.write_text(path.read_text() + "# dirty\n")
    for i in range(50):
        (root / "untracked" / f"new{i}.py").parent.mkdir(exist_ok=True)
        (root / "untracked" / f"new{i}.py").write_text(f"NEW = {i}\n")


def paired(
    nexus: Callable[[int], object],
    raw: Callable[[int], object],
    repeats: int,
    cleanup_nexus: Callable[[int], object] | None = None,
    cleanup_raw: Callable[[int], object] | None = None,
) -> tuple[float, float, float]:
    """(median NEXUS s, median raw s, median of the per-pair ratios), the two run in turns
    whose order alternates pair by pair: whichever runs first in a fixed order warms the
    disk cache for the other, so a fixed order measures the order, not the code."""
    ours: list[float] = []
    theirs: list[float] = []
    for i in range(repeats):
        order = [(nexus, cleanup_nexus, ours), (raw, cleanup_raw, theirs)]
        for action, cleanup, times in order if i % 2 == 0 else reversed(order):
            start = time.perf_counter()
            action(i)
            times.append(time.perf_counter() - start)
            if cleanup is not None:
                cleanup(i)
    ratios = [a / b for a, b in zip(ours, theirs, strict=True) if b > 0]
    return statistics.median(ours), statistics.median(theirs), statistics.median(ratios)


def sandbox_rows(ws: Workspace, repeats: int) -> list[list[object]]:
    """Rows comparing sandbox operations with the git commands they replace."""
    root = ws.root
    base = snapshot(ws)
    raw_dir = ws.state_dir / "bench-raw"

    def raw_add(i: int) -> None:
        _git(root, "worktree", "add", "--quiet", "-b", f"raw/{i}", str(raw_dir / str(i)), base)

    def raw_remove(i: int) -> None:
        _git(root, "worktree", "remove", "--force", str(raw_dir / str(i)))
        _git(root, "branch", "-D", "--quiet", f"raw/{i}")

    snap = paired(lambda i: snapshot(ws), lambda i: _git(root, "stash", "create"), repeats)
    with pool_of(0):
        tree = paired(
            lambda i: create_worktree(ws, f"bench{i}", base),
            raw_add,
            repeats,
            cleanup_nexus=lambda i: remove_worktree(ws, f"bench{i}"),
            cleanup_raw=raw_remove,
        )
    kept = raw_dir / "kept"
    _git(root, "worktree", "add", "--quiet", "--detach", str(kept), base)

    def raw_recycle(i: int) -> None:
        _git(kept, "checkout", "--quiet", "-f", "-B", f"raw/{i}", base)
        _git(kept, "clean", "--quiet", "-ffdx")

    def raw_unbranch(i: int) -> None:
        _git(kept, "checkout", "--quiet", "--detach")
        _git(root, "branch", "-D", "--quiet", f"raw/{i}")

    with pool_of(1):
        create_worktree(ws, "bench-warm", base)
        remove_worktree(ws, "bench-warm")  # the pool now holds one
        pooled = paired(
            lambda i: create_worktree(ws, f"bench{i}", base),
            raw_recycle,
            repeats,
            cleanup_nexus=lambda i: remove_worktree(ws, f"bench{i}"),
            cleanup_raw=raw_unbranch,
        )
        ready = paired(
            lambda i: make_sandbox(ws, f"ready{i}", SandboxSettings(), lambda sha: None),
            lambda i: _git(root, "stash", "create"),
            repeats,
            cleanup_nexus=lambda i: remove_worktree(ws, f"ready{i}"),
        )
    _git(root, "worktree", "remove", "--force", str(kept))
    return [
        ["snapshot()", snap[0], "git stash create", snap[1], snap[2],
         "stash create leaves out untracked files"],
        ["create_worktree(), pool empty", tree[0], "git worktree add", tree[1], tree[2],
         "disk-bound, noisy"],
        ["create_worktree(), from the pool", pooled[0], "checkout -f -B; clean -ffdx",
         pooled[1], pooled[2], f"{pooled[0] / tree[0]:.2f}x of a fresh one"],
        ["run's sandbox ready, from the pool", ready[0], "git stash create", ready[1], ready[2],
         "snapshot, policy, worktree, profile"],
    ]  # fmt: skip


@contextmanager
def pool_of(size: int) -> Iterator[None]:
    """Run with the worktree pool at `size` (the setting is read from the environment)."""
    before = os.environ.get(POOL_ENV)
    os.environ[POOL_ENV] = str(size)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(POOL_ENV, None)
        else:
            os.environ[POOL_ENV] = before


def growth_rows(sizes: list[int], repeats: int, folder: Path) -> list[list[object]]:
    """For each repository size: snapshot, fresh and pooled worktree, one step's commit."""
    rows: list[list[object]] = [
        ["files", "snapshot s", "fresh worktree s", "pooled worktree s", "step commit s"]
    ]
    for files in sizes:
        root = folder / f"repo-{files}"
        root.mkdir()
        make_repo(root, files)
        rows.append([files, *growth_row(open_workspace(root), repeats)])
        shutil.rmtree(root)
    return rows


def growth_row(ws: Workspace, repeats: int) -> list[float]:
    snap = statistics.median(timed(lambda: snapshot(ws)) for _ in range(repeats))
    base = snapshot(ws)
    fresh, pooled, commits = [], [], []
    with pool_of(0):
        for i in range(repeats):
            fresh.append(timed(lambda i=i: create_worktree(ws, f"fresh{i}", base)))
            remove_worktree(ws, f"fresh{i}")
    with pool_of(1):
        create_worktree(ws, "warm", base)
        remove_worktree(ws, "warm")  # the pool now holds one
        for i in range(repeats):
            pooled.append(timed(lambda i=i: create_worktree(ws, f"pooled{i}", base)))
            if i < repeats - 1:
                remove_worktree(ws, f"pooled{i}")
    worktree = worktree_path(ws, f"pooled{repeats - 1}")
    for i in range(repeats):
        (worktree / "pkg000" / "mod000.py").write_text(f"# step {i}\n")
        commits.append(
            timed(lambda i=i: commit_step(worktree, "edit_file", "edit", "why", "bench", i))
        )
    return [snap, statistics.median(fresh), statistics.median(pooled), statistics.median(commits)]


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def accept_rows(ws: Workspace, repeats: int, changed: int = 100) -> list[list[object]]:
    """accept() of a run that changed `changed` tracked files and added as many, next to
    applying the same diff with `git apply` (which checks nothing against later saves)."""
    root = ws.root
    base = snapshot(ws)
    worktree = create_worktree(ws, "bench-accept", base)
    tracked = sorted(p for p in worktree.rglob("mod*.py"))[:: max(1, 10_000 // changed)]
    for path in tracked[:changed]:
        path.write_text(path.read_text() + "# changed by the run\n")
    for i in range(changed):
        (worktree / "added" / f"a{i}.py").parent.mkdir(exist_ok=True)
        (worktree / "added" / f"a{i}.py").write_text(f"A = {i}\n")
    _git(worktree, "add", "-A")
    _git(worktree, "commit", "--quiet", "-m", "the run's change")
    head = _git(worktree, "rev-parse", "HEAD").strip()
    names = [f for f in _git(root, "diff", "--name-only", base, head).splitlines()]
    before = {name: (root / name).read_bytes() for name in names if (root / name).exists()}

    def undo(_i: int) -> None:
        for name in names:
            if name in before:
                (root / name).write_bytes(before[name])
            else:
                (root / name).unlink(missing_ok=True)

    def raw_apply(_i: int) -> None:
        diff = subprocess.run(["git", "diff", "--binary", base, head], cwd=root,
                              capture_output=True, check=True).stdout  # fmt: skip
        subprocess.run(["git", "apply"], cwd=root, input=diff, check=True)

    ours, theirs, ratio = paired(
        lambda i: accept(ws, base, head, key="bench"), raw_apply, repeats, undo, undo
    )
    row = [
        f"accept() {len(names)} files", ours, "git diff | git apply", theirs, ratio,
        "accept stats, stages, checks each file",
    ]  # fmt: skip
    remove_worktree(ws, "bench-accept")
    return [row]


def step_overhead_rows(ws: Workspace, steps: int) -> list[list[object]]:
    """A scripted run through the real supervisor and agent process, the model's time taken out.

    Half the steps write a file (one commit each), half read one; the scripted model
    answers at once, and its measured latency is subtracted from the run's wall time.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from scripted_model import ScriptedModel, call  # the test double, used here as a stopwatch

    from nexus_ls.supervisor import Supervisor

    script = []
    for i in range(steps // 2):
        script.append(call("write_file", "bench", path=f"bench/f{i}.txt", content=f"{i}\n"))
        script.append(call("read_file", "bench", path=f"bench/f{i}.txt"))
    script.append(call("finish", summary="done"))
    with ScriptedModel(script) as model:
        settings = RunSettings(
            ModelSettings(base_url=model.url, model="scripted-model"),
            Limits(max_steps=steps + 5),
        )
        supervisor = Supervisor(ws)
        started = time.perf_counter()
        record = supervisor.start("benchmark", settings)
        launched = time.perf_counter() - started
        record = supervisor.wait(record.id)
        total = time.perf_counter() - started
    events = supervisor.journal.query(run=record.id, category="model")
    model_s = sum(e["data"].get("latency_ms", 0) for e in events) / 1000
    per_step = (total - launched - model_s) / max(record.steps, 1)
    remove_worktree(ws, record.id)
    return [
        ["run start (snapshot, worktree, spawn)", launched, "", "", "", f"status {record.status}"],
        [
            "per step, model time excluded",
            per_step,
            "",
            "",
            "",
            f"{record.steps} steps, half commit",
        ],
    ]


def main() -> None:
    """Build the repository, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40, help="steps of the scripted run")
    parser.add_argument("--growth", help="repository sizes, comma list: the growth table only")
    args = parser.parse_args()
    if args.growth:
        sizes = [int(part) for part in args.growth.split(",") if part]
        with tempfile.TemporaryDirectory(prefix="nexus-bench-") as tmp:
            print(f"median of {args.repeats}; ~1% of files modified, 50 untracked\n")
            print_table(growth_rows(sizes, args.repeats, Path(tmp)))
        return
    with tempfile.TemporaryDirectory(prefix="nexus-bench-") as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        make_repo(root, args.files)
        ws = open_workspace(root)
        print(
            f"{args.files} files, ~1% modified, 50 untracked; median of {args.repeats} runs, "
            "NEXUS and raw git alternating which goes first\n"
        )
        rows = [
            *sandbox_rows(ws, args.repeats),
            *accept_rows(ws, args.repeats),
            *step_overhead_rows(ws, args.steps),
        ]
        print_table([HEADER, *rows])


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        env={**os.environ, **NEXUS_IDENTITY},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


if __name__ == "__main__":
    main()
