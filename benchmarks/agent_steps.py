"""A whole agent step's overhead, the model left out: the loop, the tool, the step commit
and the journal events, in-process against a model that answers at once.

    python -m benchmarks.agent_steps [--files 10000] [--steps 30]

Each step is one turn of the real loop (`agent.loop.Agent`) with the real tools and step
commits on a committed repository of `--files` small files: an `edit_file` of a different
file each step, a `read_file` (of a different file each step: the same read over and over
would be stopped as stuck), and a `run_command` that changes nothing (an `echo` of the
step's number, for the same reason). The figure is
the run's wall time divided by its steps (median of three runs); beside it the raw git a
write step could be (`git add -A && git commit`). The target for an edit step at 10,000
files: <= 30 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from agent_harness import run_agent  # noqa: E402
from scripted_model import call  # noqa: E402

from benchmarks.steps import make_repo  # noqa: E402
from benchmarks.table import print_table  # noqa: E402
from nexus_ls.config import Limits  # noqa: E402
from nexus_ls.sandbox.repo import NEXUS_IDENTITY  # noqa: E402

LIMITS = Limits(max_steps=1000, max_tokens=10**9, wall_time=3600)


def per_step(root: Path, script: list, steps: int) -> float:
    started = time.perf_counter()
    ran = run_agent(root, [*script, call("finish", summary="done")], limits=LIMITS)
    elapsed = time.perf_counter() - started
    assert ran.outcome.status == "succeeded", ran.outcome.error
    return elapsed * 1000 / (steps + 1)


def edits(start: int, steps: int) -> list:
    return [
        call("edit_file", path=f"pkg{(start + n) // 100:04d}/mod{(start + n) % 100:03d}.py",
             old="VALUE = ", new="VALUE = 1 + ")
        for n in range(steps)
    ]  # fmt: skip


def raw_commit(root: Path, steps: int) -> float:
    env = {**os.environ, **NEXUS_IDENTITY}
    times = []
    for n in range(steps):
        path = root / f"pkg{n // 100:04d}" / f"mod{n % 100:03d}.py"
        path.write_text(path.read_text() + "# raw\n")
        started = time.perf_counter()
        subprocess.run(["git", "add", "-A"], cwd=root, env=env, check=True)
        subprocess.run(["git", "commit", "-qm", "raw"], cwd=root, env=env, check=True)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    rows: list[list[object]] = [["step (10 k files: --files)", "ms per step", "note"]]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        make_repo(root, args.files)
        n = args.steps
        cases = {
            "edit_file + commit (NEXUS)": lambda k: edits(k * n, n),
            "read_file": lambda k: [
                call("read_file", path=f"pkg{m // 100:04d}/mod{m % 100:03d}.py") for m in range(n)
            ],
            "run_command, no change + status": lambda k: [
                call("run_command", command=f"echo {m}") for m in range(n)
            ],
        }
        for name, script in cases.items():
            figures = [per_step(root, script(k), n) for k in range(3)]
            rows.append([name, statistics.median(figures), f"{args.files} files, {n} steps"])
        rows.append(["raw: git add -A && git commit", raw_commit(root, n), "git alone"])
    print_table(rows)


if __name__ == "__main__":
    main()
