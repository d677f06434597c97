"""Two sub-agents doing independent work side by side, against the same work one after the
other, within one run each time.

Run from the repository root: `python -m benchmarks.sub_agents [--runs N] [--think S]`.
It makes a committed repository in a temp folder and a scripted model server on loopback
(`tests/scripted_model.py`) that waits `--think` seconds before each answer, standing for
a real model's latency. Each child reads a file, runs a command that works for about a
second (`python3 -c` hashing in a loop, in the run's sandbox), writes a file and
finishes. The parent either spawns both in one turn and waits for both (parallel), or
spawns one, waits for it, then the other (sequential); then it merges both and finishes.
Every run is real (supervisor, agent processes, sandboxes, worktrees, merges) and is
discarded after. The table shows the median wall time of each and their ratio, beside
the work alone: the child's command run directly, and the model's think time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.table import print_table
from nexus_ls.config import Limits, ModelSettings, RunSettings
from nexus_ls.sandbox import open_workspace

ROOT = Path(__file__).resolve().parent.parent
WORK = (
    "python3 -c \"import hashlib,time; t=time.time(); h=b'x'\n"
    'while time.time()-t<1: h=hashlib.sha256(h).digest()\nprint(h.hex()[:8])"'
)
HEADER = ["measure", "n", "median s", "min s", "max s", "note"]


def make_repo(root: Path) -> None:
    root.mkdir(parents=True)
    (root / "README.md").write_text("two modules\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com"}  # fmt: skip
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "initial"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True)


def reply(*calls: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"content": "", "calls": [(n, json.dumps(a)) for n, a in calls], "again": True}


def tool_text(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content")) for m in body["messages"] if m["role"] == "tool")


def script(parallel: bool, think: float) -> Any:
    """One scripted model for the whole tree: each agent answered by its task and turn."""
    lock = threading.Lock()

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        return {**pick(body), "delay": think}  # the server waits outside its lock

    def pick(body: dict[str, Any]) -> dict[str, Any]:
        first = next(m["content"] for m in body["messages"] if m["role"] == "user")
        turn = sum(m["role"] == "assistant" for m in body["messages"])
        child = re.search(r"Task: write (\w+)\.py", first)
        if child:
            name = child.group(1)
            steps = [
                reply(("read_file", {"path": "README.md"})),
                reply(("run_command", {"command": WORK})),
                reply(("write_file", {"path": f"{name}.py", "content": f"{name.upper()} = 1\n"})),
                reply(("finish", {"summary": f"{name}.py written"})),
            ]
            return steps[min(turn, 3)]
        ids = re.findall(r"sub-agent (\S+) (?:started|queued)", tool_text(body))
        spawn_a = ("spawn_agent", {"task": "write a.py"})
        spawn_b = ("spawn_agent", {"task": "write b.py"})
        with lock:
            plan = (
                [reply(spawn_a, spawn_b), reply(("wait_agents", {}))]
                if parallel
                else [
                    reply(spawn_a),
                    reply(("wait_agents", {})),
                    reply(spawn_b),
                    reply(("wait_agents", {})),
                ]  # fmt: skip
            )
            plan += [
                reply(*(("merge_agent", {"id": i}) for i in ids)),
                reply(("finish", {"summary": "both written"})),
            ]
            return plan[min(turn, len(plan) - 1)]

    return answer


def one_run(root: Path, parallel: bool, think: float) -> float:
    sys.path.insert(0, str(ROOT / "tests"))
    from scripted_model import ScriptedModel

    from nexus_ls.supervisor import Supervisor

    ws = open_workspace(root)
    with ScriptedModel([script(parallel, think)]) as model:
        settings = RunSettings(
            ModelSettings(base_url=model.url, model="scripted-model"), Limits(max_steps=40)
        )
        supervisor = Supervisor(ws)
        try:
            started = time.perf_counter()
            record = supervisor.start("write both modules", settings)
            record = supervisor.wait(record.id, timeout=300)
            took = time.perf_counter() - started
            if record.status != "succeeded":
                raise RuntimeError(f"run {record.id} {record.status}: {record.error}")
            merged = subprocess.run(
                ["git", "log", "--merges", "--format=%s", record.branch],
                cwd=root, capture_output=True, text=True, check=True,
            ).stdout.splitlines()  # fmt: skip
            if len(merged) != 2:
                raise RuntimeError(f"run {record.id} merged {len(merged)} children, not 2")
            for kid in sorted(supervisor.store.ids(), reverse=True):
                if kid.startswith(record.id):
                    supervisor.discard(kid)
        finally:
            supervisor.stop_all()
    return took


def direct(runs: int) -> list[object]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(["sh", "-c", WORK], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return ["the child's command, run directly", runs, statistics.median(times), min(times),
            max(times), "raw: sh -c, no sandbox"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--think", type=float, default=0.5, help="model latency per answer, s")
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    rows: list[list[object]] = [direct(args.runs)]
    medians = {}
    with tempfile.TemporaryDirectory(prefix="nexus-bench-") as tmp:
        root = Path(tmp) / "repo"
        make_repo(root)
        results: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.runs):
            for parallel in (False, True):  # taken in turn: a busy moment hits both alike
                results[parallel].append(one_run(root, parallel, args.think))
        for parallel in (False, True):
            times = results[parallel]
            medians[parallel] = statistics.median(times)
            label = "two children in parallel" if parallel else "two children one after the other"
            turns = "parent: 4 turns" if parallel else "parent: 6 turns"
            rows.append([label, args.runs, medians[parallel], min(times), max(times),
                         f"{turns}; children: 4 turns each"])  # fmt: skip
    ratio = medians[False] / medians[True]
    rows.append(["sequential / parallel", args.runs, ratio, "", "", "wall-time ratio"])
    print(f"model think time {args.think:g} s per answer; {args.runs} runs each, taken in turn; "
          f"{os.cpu_count()} CPUs\n")  # fmt: skip
    print_table([HEADER, *rows])


if __name__ == "__main__":
    main()
