"""How soon a run's agent asks the model its first question, with and without a spare agent.

Run from the repository root: `python -m benchmarks.agent_start [--runs N] [--files N]`.
It makes a committed repository of N small files in a temp folder and a scripted model
server on loopback (`tests/scripted_model.py`) that stamps the arrival of each chat
request, then times, from the call of `Supervisor.start` in this process:

- cold: a supervisor without a spare (the `nexus run` case): the agent process is started
  at the call, its imports overlapping the snapshot and the worktree;
- warm: a supervisor that keeps a spare (the language server's case), each run started
  once the spare has finished importing (its CPU time no longer grows);
- warm, back to back: each run started the moment the previous one ended, so the spare
  started for it has had only that run's time to import;

beside `python -c pass`, `python -c 'import openai'` and the agent's own imports, each
run as a new process with the same interpreter. Every run is a real one (sandbox,
worktree, `finish` as the model's first answer), discarded after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.table import print_table
from nexus_ls.config import Limits, ModelSettings, RunSettings
from nexus_ls.sandbox import open_workspace

ROOT = Path(__file__).resolve().parent.parent
HEADER = ["measure", "n", "median s", "min s", "max s", "start() returns s", "note"]


def make_repo(root: Path, files: int) -> None:
    root.mkdir(parents=True)
    for i in range(files):
        path = root / f"pkg{i // 100:03d}" / f"mod{i % 100:03d}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"VALUE = {i}\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com"}  # fmt: skip
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "initial"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True)


def process_row(label: str, code: str, runs: int) -> list[object]:
    """Wall time of a new interpreter running `code`."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd="/")
        times.append(time.perf_counter() - started)
    return [label, runs, statistics.median(times), min(times), max(times), "", ""]


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def wait_until_idle(pid: int, timeout: float = 20.0) -> None:
    """Until the process's CPU time stops growing (the spare is done importing)."""
    deadline = time.monotonic() + timeout
    last = cpu_ticks(pid)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = cpu_ticks(pid)
        if now == last:
            return
        last = now
    raise RuntimeError(f"agent {pid} kept using CPU for {timeout} s")


def run_rows(root: Path, runs: int) -> list[list[object]]:
    sys.path.insert(0, str(ROOT / "tests"))
    from scripted_model import ScriptedModel, call  # the test double, used as a stopwatch

    from nexus_ls.supervisor import Supervisor

    arrived: list[float] = []
    got = threading.Event()

    def stamped(body: dict[str, Any]) -> dict[str, Any]:
        arrived.append(time.perf_counter())
        got.set()
        return call("finish", "done", summary="benchmark run")

    ws = open_workspace(root)
    rows = []
    with ScriptedModel([stamped] * (3 * runs)) as model:
        settings = RunSettings(
            ModelSettings(base_url=model.url, model="scripted-model"), Limits(max_steps=3)
        )

        def one(
            supervisor: Supervisor, before: Callable[[Supervisor], None]
        ) -> tuple[float, float, bool]:
            before(supervisor)
            spare = supervisor.launcher.spare_pid()
            got.clear()
            started = time.perf_counter()
            record = supervisor.start("benchmark", settings)
            returned = time.perf_counter() - started
            if not got.wait(60):
                raise RuntimeError(f"run {record.id}: no model request within 60 s")
            first = arrived[-1] - started
            record = supervisor.wait(record.id, timeout=60)
            if record.status != "succeeded":
                raise RuntimeError(f"run {record.id} {record.status}: {record.error}")
            started_event = supervisor.journal.query(run=record.id, grep="agent started")
            pid = started_event[0]["data"].get("pid") if started_event else None
            supervisor.discard(record.id)
            return first, returned, spare is not None and pid == spare

        cases: list[tuple[str, bool, Callable[[Supervisor], None]]] = [
            ("Supervisor.start -> first model request, cold", False, lambda s: None),
            ("Supervisor.start -> first model request, warm", True, _idle_spare),
            ("... warm, back to back", True, lambda s: None),
        ]
        for label, spare, prepare in cases:
            supervisor = Supervisor(ws, spare=spare)
            try:
                results = [one(supervisor, prepare) for _ in range(runs)]
            finally:
                supervisor.stop_all()
            firsts = [r[0] for r in results]
            used = sum(r[2] for r in results)
            note = f"spare used {used} of {runs}" if spare else "no spare"
            returns = statistics.median(r[1] for r in results)
            rows.append([label, runs, statistics.median(firsts), min(firsts), max(firsts),
                         returns, note])  # fmt: skip
    return rows


def _idle_spare(supervisor: Any) -> None:
    pid = supervisor.launcher.spare_pid()
    if pid is not None:
        wait_until_idle(pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--files", type=int, default=100, help="files in the repository")
    args = parser.parse_args()
    # The agents import this checkout's nexus_ls, whatever is installed.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    rows = [
        process_row("python -c pass", "pass", args.runs),
        process_row("python -c 'import openai'", "import openai", args.runs),
        process_row(
            "python -c 'import nexus_ls.agent.__main__'",
            "import nexus_ls.agent.__main__",
            args.runs,
        ),  # fmt: skip
    ]
    with tempfile.TemporaryDirectory(prefix="nexus-bench-") as tmp:
        root = Path(tmp) / "repo"
        make_repo(root, args.files)
        rows += run_rows(root, args.runs)
    print(f"{args.files} files committed; {args.runs} runs each; python is {sys.executable}\n")
    print_table([HEADER, *rows])


if __name__ == "__main__":
    main()
