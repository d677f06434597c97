"""What the command sandbox costs per command, next to the plain `sh -c` it wraps.

Run from the repository root: `python -m benchmarks.confinement [--repeats N]`.
It makes a repository and a run's worktree in a temp folder, builds the run's real
profile, and times `run_shell` (the code path of `run_command` and `run_tests`) for
`true` and for a short `python3 -c` in each mode, beside the same command started with
plain `subprocess` and through `run_shell` unconfined. Medians in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.table import print_table
from nexus_ls.sandbox import cgroups, create_worktree, open_workspace
from nexus_ls.sandbox.confinement import prepare
from nexus_ls.sandbox.landlock import abi_version
from nexus_ls.sandbox.settings import SandboxSettings
from nexus_ls.sandbox.snapshot import snapshot
from nexus_ls.tools.shell import run_shell

COMMANDS = {"true": "true", "python3 -c pass": "python3 -c pass"}


def median_ms(action: Callable[[], object], repeats: int) -> float:
    action()  # warm caches once, untimed
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
        (root / "a.py").write_text("A = 1\n")
        ws = open_workspace(root)
        worktree = create_worktree(ws, "bench", snapshot(ws))
        modes = ["bwrap"] + (["landlock"] if abi_version() >= 1 else [])
        profiles = {
            mode: prepare(
                state_dir=ws.state_dir,
                run_id="bench",
                worktree=worktree,
                repo_root=ws.root,
                common_dir=ws.common_dir,
                settings=SandboxSettings(mode=mode),
            )  # fmt: skip
            for mode in modes
        }
        # As the agent does: commands are born in its pids cgroup (root only).
        group = cgroups.join(profiles["bwrap"].pids_cgroup, profiles["bwrap"].limits.processes)
        rows: list[list[object]] = [["command", "how", "median ms", "added ms", "note"]]
        for label, command in COMMANDS.items():
            raw = median_ms(
                lambda c=command: subprocess.run(["/bin/sh", "-c", c], cwd=worktree),  # type: ignore[misc]
                args.repeats,
            )
            rows.append([label, "subprocess sh -c", raw, None, "the raw tool"])
            plain = median_ms(lambda c=command: run_shell(c, worktree, 30, 10_000), args.repeats)  # type: ignore[misc]
            rows.append([label, "run_shell, unconfined", plain, plain - raw, "sandbox off"])
            for mode, profile in profiles.items():
                confined = median_ms(
                    lambda c=command, p=profile: run_shell(c, worktree, 30, 10_000, sandbox=p),  # type: ignore[misc]
                    args.repeats,
                )
                note = "in a pids cgroup" if group else ""
                rows.append([label, f"run_shell, {mode}", confined, confined - plain, note])
        print(
            f"median of {args.repeats}; added: beyond the row above it (sandbox: beyond unconfined)"
        )
        print()
        print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
